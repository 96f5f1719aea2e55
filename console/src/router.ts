/** React Router v6 with the v7 behaviours opted in (and their warnings gone). */
export const ROUTER_FUTURE = { v7_startTransition: true, v7_relativeSplatPath: true } as const;
