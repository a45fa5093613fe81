-- conveyor_announce looks each change's topic up in a JSONB object of the listened topics (a binary
-- search) instead of scanning the array: a batch of 500 changes whose jobs other instances follow
-- compared each with up to 502 topics, 250,000 comparisons in PL/pgSQL per statement. Otherwise as
-- in 20261126120000_event_listeners.
CREATE OR REPLACE FUNCTION "conveyor_announce"(topics TEXT[], changes JSON, reopens BOOLEAN, sender TEXT, channel TEXT, limit_bytes INTEGER)
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
  listened JSONB;
  everything BOOLEAN;
  reopened BOOLEAN;
BEGIN
  IF topics IS NULL OR changes IS NULL THEN
    RETURN 0;
  END IF;
  listened := (SELECT jsonb_object_agg(topic, true) FROM unnest(topics) AS listened_topics(topic));
  everything := listened ? 'jobs:changed';
  reopened := listened ? 'jobs:reopened';
  FOR change IN SELECT * FROM json_array_elements(changes) LOOP
    job_topic := 'job:changed:' || (change->>'jobId');
    entry_topics := array_remove(ARRAY[
      CASE WHEN listened ? job_topic THEN job_topic END,
      CASE WHEN everything THEN 'jobs:changed' END], NULL);
    entries := '{}';
    IF cardinality(entry_topics) > 0 THEN
      entries := entries || json_build_array(entry_topics, change)::text;
    END IF;
    IF reopens AND reopened
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
