import { List, ListItem, ListItemText, Typography } from "@mui/material";
import type { CommandEvent } from "../../api/types";
import { formatTime } from "../../components/format";

export function EventList({ events }: { events: CommandEvent[] }) {
  if (events.length === 0) return <Typography variant="body2">No events yet.</Typography>;
  return (
    <List dense aria-label="events">
      {events.map((e) => (
        <ListItem key={e.seq} divider>
          <ListItemText
            secondaryTypographyProps={{ component: "div" }}
            primary={`#${e.seq} ${e.kind} (${e.status})${e.final ? " · final" : ""}`}
            secondary={
              <>
                <div>{formatTime(e.received_at)}</div>
                <Typography component="pre" variant="caption" sx={{ whiteSpace: "pre-wrap", m: 0, fontFamily: "monospace" }}>
                  {JSON.stringify(e.body, null, 2)}
                </Typography>
              </>
            }
          />
        </ListItem>
      ))}
    </List>
  );
}
