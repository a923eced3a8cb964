-- Unstructured data (documents, photos, scans) attached to events and catalogue resources.
-- Bytes live in PostgreSQL, keyed by SHA-256 so the same file uploaded twice is stored once:
-- the API stays stateless and a database backup holds everything. An object store can take
-- over behind api/services/catalogue/objects.py when volumes grow past what TOAST serves well.
CREATE TABLE object_blobs (
    sha256      text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    data        bytea NOT NULL
);

CREATE TABLE objects (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_kind     text NOT NULL CHECK (owner_kind IN ('event', 'resource')),
    owner_id       text NOT NULL,
    transition_id  bigint REFERENCES event_transitions(id) ON DELETE SET NULL,
    department_id  text,               -- whose data it is, for the ingestion dashboard
    filename       text NOT NULL,
    content_type   text NOT NULL,
    size_bytes     bigint NOT NULL,
    sha256         text NOT NULL REFERENCES object_blobs(sha256),
    uploaded_by    text NOT NULL,
    uploaded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX objects_owner_idx ON objects (owner_kind, owner_id);
CREATE INDEX objects_uploaded_idx ON objects (uploaded_at);
