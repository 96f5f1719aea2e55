import {
  Alert, Button, Dialog, DialogActions, DialogContent, DialogTitle, Stack, TextField, Typography,
} from "@mui/material";
import { useRef, useState } from "react";

/** Copies `text`: the Clipboard API where the page may use it (HTTPS), else the selection. */
async function copyText(text: string, input: HTMLInputElement | null): Promise<boolean> {
  try {
    if (navigator.clipboard?.writeText) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    // fall through to the selection
  }
  if (input === null) return false;
  input.focus();
  input.select();
  try {
    return document.execCommand("copy");
  } catch {
    return false;
  }
}

/** A vehicle token, shown this once: it lives only in the caller's state until closed. */
export function TokenDialog({ vin, token, title, onClose }: {
  vin: string;
  token: string;
  title: string;
  onClose: () => void;
}) {
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<boolean | null>(null);
  return (
    // Closed only by its button: a stray click outside must not lose the token.
    <Dialog open fullWidth maxWidth="sm" aria-labelledby="token-title" aria-describedby="token-warning">
      <DialogTitle id="token-title">{title}</DialogTitle>
      <DialogContent>
        <Stack spacing={2} sx={{ pt: 1 }}>
          <Alert severity="warning" id="token-warning">
            This is the only time the token of {vin} is shown: the hub keeps only its hash and
            cannot show it again. Copy it into the vehicle's configuration now; if it is lost,
            rotate the token.
          </Alert>
          <TextField id="vehicle-token" label="Vehicle token" value={token} fullWidth
            inputRef={input} slotProps={{ htmlInput: { readOnly: true, spellCheck: false, style: { fontFamily: "monospace" } } }}
            onFocus={(e) => e.target.select()} />
          <Typography role="status" variant="body2">
            {copied === true ? "Copied to the clipboard." : copied === false ? "Could not copy: select the token and copy it by hand." : ""}
          </Typography>
        </Stack>
      </DialogContent>
      <DialogActions>
        <Button onClick={() => void copyText(token, input.current).then(setCopied)}>Copy token</Button>
        <Button variant="contained" onClick={onClose}>I have stored the token, close</Button>
      </DialogActions>
    </Dialog>
  );
}
