-- Video (issue 20 item 3, docs/video.md): the map's cameras (facilities of kind 'camera',
-- migration 084) linked to the ONVIF camera devices an agent polls, the latest snapshot of
-- each camera device (one row per camera: the table stays bounded however often operators
-- look), and which video-wall input carries which camera.
ALTER TABLE facilities
    ADD COLUMN device_id text UNIQUE REFERENCES devices(id) ON DELETE SET NULL;

CREATE TABLE camera_snapshots (
    device_id    text PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
    command_id   uuid NOT NULL,
    taken_at     timestamptz NOT NULL DEFAULT now(),
    taken_by     text NOT NULL,
    content_type text NOT NULL DEFAULT 'image/jpeg',
    image        bytea NOT NULL CHECK (octet_length(image) <= 8 * 1024 * 1024)
);

CREATE TABLE wall_inputs (
    wall_id    text NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    input      integer NOT NULL CHECK (input BETWEEN 1 AND 1024),
    camera_id  text NOT NULL REFERENCES facilities(id) ON DELETE CASCADE,
    updated_by text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (wall_id, input),
    UNIQUE (wall_id, camera_id)
);
