-- The command centre's network (issue 20 item 2, docs/console.md 网络): links declared by an
-- engineer between two network devices' ports, for devices that expose no LLDP (network/
-- derives the rest from the LLDP readings). One row per link, whichever end is named first.
CREATE TABLE network_links (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_a    text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    port_a      text NOT NULL CHECK (port_a ~ '^[a-z_]+[0-9]+$'),
    device_b    text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    port_b      text NOT NULL CHECK (port_b ~ '^[a-z_]+[0-9]+$'),
    note        text NOT NULL DEFAULT '' CHECK (length(note) <= 500),
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((device_a, port_a) <> (device_b, port_b))
);
-- a port carries one declared link, whichever end it is
CREATE UNIQUE INDEX network_links_end_a ON network_links (device_a, port_a);
CREATE UNIQUE INDEX network_links_end_b ON network_links (device_b, port_b);
