-- Which event topics some instance listens to, so that the statements changing jobs notify other
-- instances only of changes someone there follows (src/events/listener-registry.ts). A row lives
-- as long as its instance's LISTEN connection (listener_pid): rows of a connection that is gone are
-- deleted by the next instance that looks.

CREATE TABLE "event_listeners" (
    "topic" TEXT NOT NULL,
    "listener_pid" INTEGER NOT NULL,
    "instance_id" TEXT NOT NULL,
    "registered_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "event_listeners_pkey" PRIMARY KEY ("topic", "listener_pid")
);

-- The topics among `topics` that an instance other than the caller's (its connections carry
-- conveyor.instance) listens to; NULL for none. VOLATILE and in PL/pgSQL, so its query takes a
-- snapshot of its own when called rather than the calling statement's: a statement that has just
-- locked a job's row sees a registration committed while it waited for that lock (the registration
-- locks the row too), so no change falls between a new subscriber's registration and its first
-- read of the job.
CREATE FUNCTION "conveyor_listened_topics"(topics TEXT[]) RETURNS TEXT[] LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN (
    SELECT array_agg("topic") FROM "event_listeners"
    WHERE "topic" = ANY(topics) AND "instance_id" IS DISTINCT FROM current_setting('conveyor.instance', true)
  );
END
$$;

-- Sends `changes` (a JSON array of job changes, as src/events/messages.ts's JobChange) on
-- `channel`, on the topics among `topics` they belong to: each change on its job's topic and on
-- jobs:changed, and a change out of a final state (`reopens`) on jobs:reopened with its id; packed
-- into as few notifications of at most `limit_bytes` as they fit in (PostgreSQL refuses 8,000), each
-- signed with `sender` (the sending instance). An entry too large for one notification is left out. Returns how many were sent.
-- Called only when some topic is listened to (src/jobs/sql.ts, announceChanges), so a change that
-- nobody follows costs no JSON at all.
CREATE FUNCTION "conveyor_announce"(topics TEXT[], changes JSON, reopens BOOLEAN, sender TEXT, channel TEXT, limit_bytes INTEGER)
RETURNS INTEGER LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  opening TEXT := '{"from":' || coalesce(to_json(sender)::text, 'null') || ',"entries":[';
  change JSON;
  job_topic TEXT;
  entry_topics TEXT[];
  entries TEXT[];
  entry TEXT;
  payload TEXT := '';
  sent INTEGER := 0;
BEGIN
  IF topics IS NULL OR changes IS NULL THEN
    RETURN 0;
  END IF;
  FOR change IN SELECT * FROM json_array_elements(changes) LOOP
    job_topic := 'job:changed:' || (change->>'jobId');
    entry_topics := array_remove(ARRAY[
      CASE WHEN job_topic = ANY(topics) THEN job_topic END,
      CASE WHEN 'jobs:changed' = ANY(topics) THEN 'jobs:changed' END], NULL);
    entries := '{}';
    IF cardinality(entry_topics) > 0 THEN
      entries := entries || json_build_array(entry_topics, change)::text;
    END IF;
    IF reopens AND 'jobs:reopened' = ANY(topics)
      AND change->>'previousStatus' IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED') THEN
      entries := entries || json_build_array(ARRAY['jobs:reopened'], change->'jobId')::text;
    END IF;
    FOREACH entry IN ARRAY entries LOOP
      CONTINUE WHEN octet_length(opening) + octet_length(entry) + 2 > limit_bytes;
      IF payload <> '' AND octet_length(opening) + octet_length(payload) + octet_length(entry) + 3 > limit_bytes THEN
        PERFORM pg_notify(channel, opening || payload || ']}');
        sent := sent + 1;
        payload := '';
      END IF;
      payload := CASE WHEN payload = '' THEN entry ELSE payload || ',' || entry END;
    END LOOP;
  END LOOP;
  IF payload <> '' THEN
    PERFORM pg_notify(channel, opening || payload || ']}');
    sent := sent + 1;
  END IF;
  RETURN sent;
END
$$;
