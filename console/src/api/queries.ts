/** React Query keys and fetchers of the hub's REST API. */
import type { ApiClient, Query } from "./client";
import type { CatalogCommand, Command, EventList, Page, Vehicle, VehicleDetail } from "./types";

export const keys = {
  vehicles: (query: Query) => ["vehicles", query] as const,
  vehicleCounts: ["vehicles", "counts"] as const,
  vehicle: (vin: string) => ["vehicle", vin] as const,
  catalog: ["catalog"] as const,
  commands: (query: Query) => ["commands", query] as const,
  events: (id: string) => ["events", id] as const,
};

export const fetchVehicles = (api: ApiClient, query: Query, signal?: AbortSignal) =>
  api.get<Page<Vehicle>>("/api/v1/vehicles", query, signal);

export const fetchVehicle = (api: ApiClient, vin: string, signal?: AbortSignal) =>
  api.get<VehicleDetail>(`/api/v1/vehicles/${encodeURIComponent(vin)}`, undefined, signal);

export const fetchCatalog = (api: ApiClient, signal?: AbortSignal) =>
  api.get<{ items: CatalogCommand[]; total: number }>("/api/v1/catalog", undefined, signal);

export const fetchCommands = (api: ApiClient, query: Query, signal?: AbortSignal) =>
  api.get<Page<Command>>("/api/v1/commands", query, signal);

export const fetchEvents = (api: ApiClient, id: string, signal?: AbortSignal) =>
  api.get<EventList>(`/api/v1/commands/${encodeURIComponent(id)}/events`, undefined, signal);
