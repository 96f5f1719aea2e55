import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../../api/client";
import type { CatalogCommand } from "../../api/types";
import { CommandComposer } from "./CommandComposer";

const catalog: CatalogCommand[] = [
  {
    name: "ClearDTC",
    description: "Clear trouble codes",
    sovd: { method: "DELETE", path: "/x", query: [], body: [] },
    params: {
      type: "object",
      properties: {
        ecuAddress: { type: "string", enum: ["0x10", "0x18"], pattern: "^0x[0-9A-Fa-f]{2}$", description: "ECU address" },
        dtcCode: { type: "string", pattern: "^P[0-9A-F]{4}$", description: "trouble code" },
        retries: { type: "integer", minimum: 0, maximum: 5 },
      },
      required: ["ecuAddress"],
      additionalProperties: false,
    },
    examples: [{}],
  },
  {
    name: "ListComponents",
    description: "List ECUs",
    sovd: { method: "GET", path: "/components", query: [], body: [] },
    params: { type: "object", properties: {}, required: [] },
    examples: [{}],
  },
];

const VIN = "1SVDHB00000000001";

function json(status: number, body: unknown, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

function setup(fetchImpl: typeof fetch) {
  const api = new ApiClient({
    getAccessToken: async () => "token",
    onUnauthorized: vi.fn(),
    fetch: fetchImpl,
  });
  const onSubmitted = vi.fn();
  render(<CommandComposer vin={VIN} catalog={catalog} api={api} offline={false} onSubmitted={onSubmitted} />);
  return { onSubmitted, user: userEvent.setup() };
}

async function chooseEcu(user: ReturnType<typeof userEvent.setup>, value: string) {
  await user.click(screen.getByRole("combobox", { name: /ecuAddress/ }));
  await user.click(within(screen.getByRole("listbox")).getByRole("option", { name: value }));
}

describe("CommandComposer", () => {
  it("renders a labelled field per schema property", () => {
    setup(vi.fn());
    expect(screen.getByRole("combobox", { name: /ecuAddress/ })).toBeInTheDocument();
    expect(screen.getByLabelText(/dtcCode/)).toBeInTheDocument();
    expect(screen.getByLabelText(/retries/)).toBeInTheDocument();
    expect(screen.getByLabelText(/timeout_s/)).toBeInTheDocument();
    expect(screen.getByLabelText(/ttl_s/)).toBeInTheDocument();
  });

  it("refuses a missing required field and a bad pattern before sending", async () => {
    const fetchImpl = vi.fn<typeof fetch>();
    const { user } = setup(fetchImpl);
    await user.type(screen.getByLabelText(/dtcCode/), "X123");
    await user.type(screen.getByLabelText(/retries/), "9");
    await user.click(screen.getByRole("button", { name: "Send" }));
    expect(await screen.findByText("ecuAddress is required")).toBeInTheDocument();
    expect(screen.getByText("dtcCode must match ^P[0-9A-F]{4}$")).toBeInTheDocument();
    expect(screen.getByText("retries must be from 0 to 5")).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("nothing was sent");
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it("sends once with an Idempotency-Key and reports the accepted command", async () => {
    let release: (r: Response) => void = () => {};
    const fetchImpl = vi.fn<typeof fetch>(
      () => new Promise<Response>((resolve) => { release = resolve; }),
    );
    const { user, onSubmitted } = setup(fetchImpl);
    await chooseEcu(user, "0x18");
    await user.type(screen.getByLabelText(/dtcCode/), "P0420");
    await user.type(screen.getByLabelText(/timeout_s/), "30");
    const send = screen.getByRole("button", { name: "Send" });
    await user.click(send);
    expect(screen.getByRole("button", { name: "Sending…" })).toBeDisabled();
    // a second submit (Enter in a field, a double click) while sending sends nothing
    fireEvent.submit(send.closest("form")!);
    expect(fetchImpl).toHaveBeenCalledTimes(1);
    const [url, init] = fetchImpl.mock.calls[0]!;
    expect(url).toBe("/api/v1/commands");
    const headers = init!.headers as Record<string, string>;
    expect(headers["Idempotency-Key"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(headers.Authorization).toBe("Bearer token");
    expect(JSON.parse(init!.body as string)).toEqual({
      vin: VIN, command: "ClearDTC", params: { ecuAddress: "0x18", dtcCode: "P0420" }, timeout_s: 30,
    });
    release(json(202, { id: "c1", vin: VIN, command: "ClearDTC", status: "pending" }));
    await waitFor(() => expect(onSubmitted).toHaveBeenCalledWith(expect.objectContaining({ id: "c1" })));
  });

  it("retries a failed attempt with the same key", async () => {
    const fetchImpl = vi
      .fn<typeof fetch>()
      .mockRejectedValueOnce(new TypeError("Failed to fetch"))
      .mockResolvedValueOnce(json(200, { id: "c1" }));
    const { user, onSubmitted } = setup(fetchImpl);
    await user.click(screen.getByRole("combobox", { name: "Command" }));
    await user.click(screen.getByRole("option", { name: "ListComponents" }));
    await user.click(screen.getByRole("button", { name: "Send" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("cannot reach the hub");
    await user.click(screen.getByRole("button", { name: "Send" }));
    await waitFor(() => expect(onSubmitted).toHaveBeenCalled());
    const keys = fetchImpl.mock.calls.map(([, init]) => (init!.headers as Record<string, string>)["Idempotency-Key"]);
    expect(keys[0]).toBeDefined();
    expect(keys[1]).toBe(keys[0]);
  });

  it("maps a 422's details onto the fields", async () => {
    const fetchImpl = vi.fn<typeof fetch>().mockResolvedValue(
      json(422, {
        error: {
          code: "invalid_command",
          message: "params.dtcCode is not known",
          correlation_id: "abc",
          details: [
            { field: "params.dtcCode", rule: "enum", message: "params.dtcCode P0001 is not a known code" },
            { field: "ttl_s", rule: "maximum", message: "ttl_s must be at most 3600, got 9999" },
          ],
        },
      }),
    );
    const { user, onSubmitted } = setup(fetchImpl);
    await chooseEcu(user, "0x10");
    await user.type(screen.getByLabelText(/dtcCode/), "P0001");
    await user.type(screen.getByLabelText(/ttl_s/), "9999");
    await user.click(screen.getByRole("button", { name: "Send" }));
    expect(await screen.findByText("params.dtcCode P0001 is not a known code")).toBeInTheDocument();
    expect(screen.getByText("ttl_s must be at most 3600, got 9999")).toBeInTheDocument();
    expect(screen.getByLabelText(/dtcCode/)).toHaveAttribute("aria-invalid", "true");
    expect(screen.getByRole("alert")).toHaveTextContent("The hub refused the command");
    expect(onSubmitted).not.toHaveBeenCalled();
  });
});
