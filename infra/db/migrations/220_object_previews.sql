-- Office files (docx, xlsx, pptx, doc, xls) previewed as PDF (issue 18, the 部门工作台's files):
-- LibreOffice converts them in the background (datafoundation/catalogue/previews.py). One row
-- per distinct content, like object_blobs: the same file uploaded twice is converted once. The
-- PDF is a blob beside the original's, so a database backup holds it too.
CREATE TABLE object_previews (
    sha256       text PRIMARY KEY REFERENCES object_blobs(sha256),
    state        text NOT NULL CHECK (state IN ('converting', 'ready', 'failed')),
    pdf_sha256   text REFERENCES object_blobs(sha256),
    reason       text,                -- why LibreOffice could not convert it (state failed)
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    CHECK ((state = 'ready') = (pdf_sha256 IS NOT NULL)),
    CHECK ((state = 'failed') = (reason IS NOT NULL))
);
