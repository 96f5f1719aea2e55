import { CssBaseline, ThemeProvider } from "@mui/material";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { useState, type ReactNode } from "react";
import { ApiError } from "./api/errors";
import { SessionProvider } from "./session/SessionContext";
import { theme } from "./theme";
import { LiveProvider } from "./ws/LiveContext";

export function makeQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        // A 4xx will not change by asking again; network errors and 5xx may.
        retry: (count, error) =>
          count < 2 && !(error instanceof ApiError && error.status >= 400 && error.status < 500),
        refetchOnWindowFocus: false,
      },
      mutations: { retry: false },
    },
  });
}

export function AppProviders({
  children,
  queryClient,
  fetchImpl,
}: {
  children: ReactNode;
  queryClient?: QueryClient;
  fetchImpl?: typeof fetch;
}) {
  const [client] = useState(() => queryClient ?? makeQueryClient());
  return (
    <ThemeProvider theme={theme}>
      <CssBaseline />
      <QueryClientProvider client={client}>
        <SessionProvider fetchImpl={fetchImpl}>
          <LiveProvider>{children}</LiveProvider>
        </SessionProvider>
      </QueryClientProvider>
    </ThemeProvider>
  );
}
