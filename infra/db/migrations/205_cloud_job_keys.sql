-- A cloud job submitted again with the same Idempotency-Key by the same person (a double click
-- in the console, a retry after a lost answer) is the first job, never a second one.
ALTER TABLE jobs ADD COLUMN idempotency_key text
    CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 8 AND 64);
CREATE UNIQUE INDEX jobs_idempotency_key_idx ON jobs (requested_by, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
