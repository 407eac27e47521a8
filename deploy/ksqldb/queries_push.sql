-- =====================================================================================
-- RobotOrchestra Streams - transient ksqlDB queries over the streams and tables of
-- queries.sql (run that file first).
--
-- Push queries (EMIT CHANGES) never end: paste them into the ksql CLI one at a time and
-- stop each with Ctrl-C. Pull queries (no EMIT CHANGES, on a table) answer once.
-- Replace 'replace-with-a-match-id' with a match id (`orchestra history` lists them).
-- =====================================================================================

SET 'auto.offset.reset' = 'earliest';

-- Everything that happened in one match, in order.
SELECT `timestamp`, sequence, eventType, eventId, causationId, data
  FROM match_events
  WHERE matchId = 'replace-with-a-match-id'
  EMIT CHANGES;

-- Event mix per minute.
SELECT eventType, COUNT(*) AS events
  FROM match_events
  WINDOW TUMBLING (SIZE 1 MINUTE)
  GROUP BY eventType
  EMIT CHANGES;

-- Completed matches hour by hour.
SELECT TIMESTAMPTOSTRING(WINDOWSTART, 'yyyy-MM-dd HH:00', 'UTC') AS hour_utc,
       completed,
       avg_duration_ms
  FROM matches_completed_per_hour
  EMIT CHANGES;

-- Pull queries: one match, now; one finished match.
SELECT * FROM match_state WHERE match_id = 'replace-with-a-match-id';
SELECT * FROM match_history WHERE match_id = 'replace-with-a-match-id';

-- Human voters' accuracy, now.
SELECT * FROM human_detection_accuracy WHERE voter_kind = 'human';

-- How convincing is one personality?
SELECT personality, chances, taken_for_human, fooled_rate
  FROM personality_fooled_rate
  WHERE personality = 'curious-student';

-- Leaderboard as it changes (pull queries cannot ORDER BY).
SELECT personality, fooled_rate, chances
  FROM personality_fooled_rate
  EMIT CHANGES;

-- Robot answers per model as they come.
SELECT model, answers, avg_latency_ms, tokens
  FROM robot_answers_per_model
  EMIT CHANGES;

-- The stats processor's windows, newest figures.
SELECT statKey, windowStart, matchesCompleted, humanDetectionAccuracy
  FROM match_stats
  WHERE stat_key = 'replace-with-a-stat-key';
