-- People who log in to the API and the console.
CREATE TABLE users (
    id             integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username       text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    password_hash  text NOT NULL,
    role           text NOT NULL CHECK (role IN ('admin', 'ops_engineer', 'field_technician',
                                                 'operator', 'dispatcher', 'department_staff',
                                                 'viewer')),
    department_id  text REFERENCES departments(id),
    disabled       boolean NOT NULL DEFAULT false,
    created_at     timestamptz NOT NULL DEFAULT now()
);
