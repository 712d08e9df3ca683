-- jobq migration 0010: signed agent filters (schema version 10).
-- With JOBQ_SECRET, an agent's filter (an import path a worker loads and calls) is stored with
-- its signature; a worker with the secret refuses a filter whose signature does not hold.
ALTER TABLE jobq_agents ADD COLUMN filter_seal TEXT;
