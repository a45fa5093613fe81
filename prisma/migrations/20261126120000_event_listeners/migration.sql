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
    SELECT array_agg(DISTINCT "topic") FROM "event_listeners"
    WHERE "topic" = ANY(topics) AND "instance_id" IS DISTINCT FROM current_setting('conveyor.instance', true)
  );
END
$$;
