-- When the gateway performed the command, by its own clock (the result's ts). finished_at is
-- when the platform recorded the result; with several API processes recording results those
-- times need not follow the order the device applied the commands in, applied_at does.
ALTER TABLE commands ADD COLUMN applied_at timestamptz;
