/** Admin routes of the hub: operator accounts (api/users.py) and the vehicle registry and its
 *  credentials (api/vehicles.py). Every one of them answers 403 below the admin role. */
import type { ApiClient, Query } from "./client";
import type { Role, Vehicle } from "./types";

export interface User {
  id: number;
  username: string;
  role: Role;
  enabled: boolean;
  created_at: string;
}

export interface UserList {
  items: User[];
  total: number;
  limit: number;
  offset: number;
}

export interface NewUser {
  username: string;
  password: string;
  role: Role;
}

export interface UserPatch {
  role?: Role;
  enabled?: boolean;
}

export interface NewVehicle {
  vin: string;
  make: string;
  model: string;
  year: number;
  metadata?: Record<string, unknown>;
}

/** `POST /api/v1/vehicles` answers the vehicle with its token: shown once, never again. */
export interface VehicleCreated extends Vehicle {
  token: string;
}

export interface VehicleToken {
  vin: string;
  token: string;
}

export const ROLES: readonly Role[] = ["viewer", "engineer", "admin"];

export const adminKeys = {
  users: (query: Query) => ["users", query] as const,
};

const vehiclePath = (vin: string) => `/api/v1/vehicles/${encodeURIComponent(vin)}`;

export const fetchUsers = (api: ApiClient, query: Query, signal?: AbortSignal) =>
  api.get<UserList>("/api/v1/users", query, signal);

export const createUser = (api: ApiClient, user: NewUser) => api.post<User>("/api/v1/users", user);

export const updateUser = (api: ApiClient, id: number, patch: UserPatch) =>
  api.patch<User>(`/api/v1/users/${id}`, patch);

export const unlockUser = (api: ApiClient, id: number) =>
  api.post<void>(`/api/v1/users/${id}/unlock`);

export const registerVehicle = (api: ApiClient, vehicle: NewVehicle) =>
  api.post<VehicleCreated>("/api/v1/vehicles", vehicle);

export const rotateVehicleToken = (api: ApiClient, vin: string) =>
  api.post<VehicleToken>(`${vehiclePath(vin)}/token`);

export const setVehicleEnabled = (api: ApiClient, vin: string, enabled: boolean) =>
  api.post<Vehicle>(`${vehiclePath(vin)}/${enabled ? "enable" : "disable"}`);
