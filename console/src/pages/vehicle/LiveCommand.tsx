/** One command's events as they stream (`command:<id>` from seq 0), its end, and Cancel. */
import { Alert, Box, Button, Chip, LinearProgress, Paper, Stack, Typography } from "@mui/material";
import { useQueryClient } from "@tanstack/react-query";
import { useReducer, useRef, useState } from "react";
import { describeError } from "../../api/errors";
import { isFinalStatus, type Command } from "../../api/types";
import { statusColor } from "../../components/format";
import { useApi } from "../../session/SessionContext";
import {
  commandStreamReducer,
  finalEvent,
  initialCommandStream,
  resumeFrom,
} from "../../ws/commandStream";
import { commandTopic } from "../../ws/frames";
import { useTopic } from "../../ws/LiveContext";
import { EventList } from "./EventList";
import { latestProgress } from "./progress";

export function LiveCommand({ command, canCancel }: { command: Command; canCancel: boolean }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [stream, dispatch] = useReducer(commandStreamReducer, initialCommandStream);
  const streamRef = useRef(stream);
  streamRef.current = stream;
  const [streamError, setStreamError] = useState<string | null>(null);
  const [cancelState, setCancelState] = useState<{ busy: boolean; error: unknown }>({ busy: false, error: null });

  useTopic(
    commandTopic(command.id),
    (frame) => {
      if (frame.type === "event") {
        dispatch({ type: "event", event: frame });
        if (frame.seq === 0) {  // it runs now: the vehicle's active counts and recent list changed
          void queryClient.invalidateQueries({ queryKey: ["vehicle", command.vin] });
          void queryClient.invalidateQueries({ queryKey: ["commands"] });
        }
      }
      else if (frame.type === "status") {
        dispatch({ type: "status", status: frame.status, error: frame.error, at: frame.at });
        void queryClient.invalidateQueries({ queryKey: ["vehicle", command.vin] });
        void queryClient.invalidateQueries({ queryKey: ["commands"] });
      } else if (frame.type === "error") setStreamError(`${frame.code}: ${frame.message}`);
    },
    () => resumeFrom(streamRef.current),
  );

  const status = stream.final?.status ?? (stream.events.length > 0 ? "running" : command.status);
  const ended = stream.final !== null || isFinalStatus(command.status);
  const result = finalEvent(stream);
  const progress = latestProgress(stream.events);

  async function cancel() {
    setCancelState({ busy: true, error: null });
    try {
      await api.post(`/api/v1/commands/${encodeURIComponent(command.id)}/cancel`);
      setCancelState({ busy: false, error: null });
    } catch (error) {
      setCancelState({ busy: false, error });
    }
  }

  return (
    <Paper sx={{ p: 2 }} aria-labelledby={`live-${command.id}`}>
      <Stack spacing={1}>
        <Stack direction="row" spacing={1} alignItems="center">
          <Typography id={`live-${command.id}`} variant="h6" component="h2">
            {command.command}
          </Typography>
          <Chip size="small" label={status} color={statusColor(status)} aria-live="polite" />
          <Typography variant="caption">{command.id}</Typography>
        </Stack>
        {progress !== null && !ended && (
          <Box>
            <Typography variant="body2" id={`progress-${command.id}`}>Progress: {progress} %</Typography>
            <LinearProgress variant="determinate" value={progress} aria-labelledby={`progress-${command.id}`} />
          </Box>
        )}
        {stream.final?.error && <Alert severity="error">{stream.final.error}</Alert>}
        {streamError && <Alert severity="warning">Live stream: {streamError}</Alert>}
        {cancelState.error !== null && <Alert severity="error">Cancel: {describeError(cancelState.error)}</Alert>}
        {result && (
          <Box>
            <Typography variant="subtitle2">Result</Typography>
            <Typography component="pre" variant="body2" sx={{ whiteSpace: "pre-wrap", fontFamily: "monospace", m: 0 }}>
              {JSON.stringify(result.body, null, 2)}
            </Typography>
          </Box>
        )}
        <EventList events={stream.events} />
        {canCancel && !ended && (
          <Box>
            <Button variant="outlined" color="warning" onClick={() => void cancel()} disabled={cancelState.busy}>
              {cancelState.busy ? "Cancelling…" : "Cancel"}
            </Button>
          </Box>
        )}
      </Stack>
    </Paper>
  );
}
