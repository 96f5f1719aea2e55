import { Alert } from "@mui/material";
import { describeError } from "../api/errors";

export function ErrorAlert({ error, title }: { error: unknown; title?: string }) {
  if (!error) return null;
  return (
    <Alert severity="error" role="alert" sx={{ my: 1 }}>
      {title ? `${title}: ` : ""}
      {describeError(error)}
    </Alert>
  );
}
