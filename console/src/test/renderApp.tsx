/** The whole app in a MemoryRouter on a scripted fetch, logged in as a role (or not). */
import { render } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import type { QueryClient } from "@tanstack/react-query";
import { MemoryRouter } from "react-router-dom";
import { App } from "../App";
import { AppProviders, makeQueryClient } from "../AppProviders";
import { ROUTER_FUTURE } from "../router";
import { saveSession, tokensFromResponse } from "../session/tokens";
import { fakeFetch, type Route } from "./fakes";

export const tokenBody = {
  access_token: "access-1", refresh_token: "refresh-1", token_type: "bearer" as const,
  expires_in: 900, refresh_expires_in: 3600, session_id: "s1",
};

export function loggedIn(role: "viewer" | "engineer" | "admin", username: string = role) {
  saveSession(sessionStorage, {
    tokens: tokensFromResponse(tokenBody, Date.now()),
    user: { username, role },
  });
}

export function renderApp(path: string, routes: Record<string, Route>) {
  const fetchImpl = fakeFetch(routes);
  const queryClient: QueryClient = makeQueryClient();
  render(
    <MemoryRouter initialEntries={[path]} future={ROUTER_FUTURE}>
      <AppProviders queryClient={queryClient} fetchImpl={fetchImpl}>
        <App />
      </AppProviders>
    </MemoryRouter>,
  );
  return { fetchImpl, queryClient, user: userEvent.setup() };
}

/** The URLs fetched for `path` (without the query), in order. */
export function calls(fetchImpl: ReturnType<typeof fakeFetch>, path: string, method = "GET") {
  return fetchImpl.mock.calls
    .filter(([url, init]) => String(url).split("?")[0] === path && (init?.method ?? "GET") === method)
    .map(([url, init]) => ({ url: String(url), init: init! }));
}

export const forbidden = (role: string) => ({
  error: { code: "forbidden", message: `role admin or higher required; you are ${role}`, correlation_id: "c403" },
});
