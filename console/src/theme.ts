import { createTheme } from "@mui/material/styles";

/** System fonts only: the console loads nothing from outside the hub. */
export const theme = createTheme({
  typography: {
    fontFamily:
      'system-ui, -apple-system, "Segoe UI", "Helvetica Neue", Arial, "Noto Sans", "Liberation Sans", sans-serif',
  },
});
