-- Each listened topic once, however many instances listen to it: conveyor_announce tests every
-- change against the whole array, so a topic followed from N instances cost N comparisons per change.
CREATE OR REPLACE FUNCTION "conveyor_listened_topics"(topics TEXT[]) RETURNS TEXT[] LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  RETURN (
    SELECT array_agg(DISTINCT "topic") FROM "event_listeners"
    WHERE "topic" = ANY(topics) AND "instance_id" IS DISTINCT FROM current_setting('conveyor.instance', true)
  );
END
$$;
