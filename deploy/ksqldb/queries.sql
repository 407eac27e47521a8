-- =====================================================================================
-- RobotOrchestra Streams - ksqlDB examples for analysts
--
-- Every topic holds plain JSON values with UTF-8 string keys (see deploy/topics.json),
-- so ksqlDB reads them with VALUE_FORMAT='JSON' and no schema registry.
--
-- Run against the compose stack:
--   docker compose -f deploy/compose/docker-compose.yml --profile analytics up -d
--   docker compose -f deploy/compose/docker-compose.yml exec ksqldb-cli \
--     ksql http://ksqldb:8088 --file /queries/queries.sql
-- or paste the statements one by one into the ksql CLI.
--
-- Notes
-- * Unquoted identifiers are upper-cased by ksqlDB; JSON fields are matched
--   case-insensitively, so `eventId` reads the JSON field "eventId".
--   `timestamp` is back-quoted because TIMESTAMP is a type name.
-- * `data` is declared VARCHAR: ksqlDB turns a nested JSON object into its JSON text,
--   and EXTRACTJSONFIELD reads any field of any event type from it.
-- * Columns missing from a record read as NULL; extra JSON fields are ignored. The
--   columns of match-state and match-history below follow the documents the processors
--   write (schemas/json/*.schema.json); adjust them if a schema changes.
-- * Windows use the Kafka record timestamp (ROWTIME), which the runtime sets to the
--   event's time.
-- * Nothing here writes to the RobotOrchestra topics: every CREATE ... AS SELECT writes
--   to its own new topic (named after the stream/table, upper-case).
-- =====================================================================================

SET 'auto.offset.reset' = 'earliest';

-- -------------------------------------------------------------------------------------
-- 1. The canonical event log: match-events (infinite retention)
-- -------------------------------------------------------------------------------------

CREATE STREAM match_events (
  eventId        VARCHAR,
  eventType      VARCHAR,
  schemaVersion  INT,
  matchId        VARCHAR,
  `timestamp`    VARCHAR,
  correlationId  VARCHAR,
  causationId    VARCHAR,
  data           VARCHAR
) WITH (
  KAFKA_TOPIC  = 'match-events',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- Everything that happened in one match, in order (transient push query).
SELECT `timestamp`, eventType, eventId, causationId, data
  FROM match_events
  WHERE matchId = 'replace-with-a-match-id'
  EMIT CHANGES;

-- Event mix per minute (transient push query).
SELECT eventType, COUNT(*) AS events
  FROM match_events
  WINDOW TUMBLING (SIZE 1 MINUTE)
  GROUP BY eventType
  EMIT CHANGES;

-- Completed matches per hour, with their mean duration.
CREATE TABLE matches_completed_per_hour
  WITH (KAFKA_TOPIC = 'ksql-matches-completed-per-hour', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT eventType,
         COUNT(*) AS completed,
         AVG(CAST(EXTRACTJSONFIELD(data, '$.durationMs') AS BIGINT)) AS avg_duration_ms
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType = 'match.completed'
    GROUP BY eventType
    EMIT CHANGES;

-- Read it hour by hour.
SELECT TIMESTAMPTOSTRING(WINDOWSTART, 'yyyy-MM-dd HH:00', 'UTC') AS hour_utc,
       completed,
       avg_duration_ms
  FROM matches_completed_per_hour
  EMIT CHANGES;

-- Matches created per hour and template (classic_1v3, duel_2v1, ...).
CREATE TABLE matches_created_per_hour_by_template
  WITH (KAFKA_TOPIC = 'ksql-matches-created-per-hour-by-template', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT EXTRACTJSONFIELD(data, '$.template') AS template,
         COUNT(*) AS created
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType = 'match.created'
    GROUP BY EXTRACTJSONFIELD(data, '$.template')
    EMIT CHANGES;

-- Responses and votes that ran out of time, per hour.
CREATE TABLE timeouts_per_hour
  WITH (KAFKA_TOPIC = 'ksql-timeouts-per-hour', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT eventType,
         COUNT(*) AS timeouts
    FROM match_events
    WINDOW TUMBLING (SIZE 1 HOUR)
    WHERE eventType IN ('response.timed_out', 'vote.timed_out')
    GROUP BY eventType
    EMIT CHANGES;

-- -------------------------------------------------------------------------------------
-- 2. Current state of every match: match-state (compacted, key = match id)
-- -------------------------------------------------------------------------------------

-- A SOURCE TABLE is materialized by ksqlDB, so it answers pull queries.
CREATE SOURCE TABLE match_state (
  match_id      VARCHAR PRIMARY KEY,
  template      VARCHAR,
  status        VARCHAR,
  phase         VARCHAR,
  currentRound  INT,
  totalRounds   INT,
  scores        MAP<VARCHAR, INT>,
  updatedAt     VARCHAR
) WITH (
  KAFKA_TOPIC  = 'match-state',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- Pull query: one match, now.
SELECT * FROM match_state WHERE match_id = 'replace-with-a-match-id';

-- -------------------------------------------------------------------------------------
-- 3. Finished matches: match-history (compacted, key = match id)
--
-- Fields used below (one document per finished match):
--   matchId, template, totalRounds, completedAt, durationMs,
--   humans        : identities of the human seats (the reveal), e.g. ["A"]
--   finalScores   : { identity: points }
--   rounds[]      : { robots: [{identity, robotId, personality}],
--                     votes:  [{voter, votedFor}] }   -- votedFor is null when timed out
-- -------------------------------------------------------------------------------------

-- As a table: look up one finished match.
CREATE SOURCE TABLE match_history (
  match_id     VARCHAR PRIMARY KEY,
  template     VARCHAR,
  totalRounds  INT,
  completedAt  VARCHAR,
  durationMs   BIGINT,
  humans       ARRAY<VARCHAR>,
  finalScores  MAP<VARCHAR, INT>
) WITH (
  KAFKA_TOPIC  = 'match-history',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

SELECT * FROM match_history WHERE match_id = 'replace-with-a-match-id';

-- As a stream: every history document once, for the vote analytics below.
-- (A compacted topic can still hold an older copy of a document until compaction runs;
--  after a replay of match-events the history processor rewrites identical documents,
--  which would be counted twice here - rebuild these queries after a replay.)
CREATE STREAM match_history_stream (
  matchId      VARCHAR,
  template     VARCHAR,
  completedAt  VARCHAR,
  humans       ARRAY<VARCHAR>,
  rounds       ARRAY<STRUCT<
                 robots ARRAY<STRUCT<identity VARCHAR, robotId VARCHAR, personality VARCHAR>>,
                 votes  ARRAY<STRUCT<voter VARCHAR, votedFor VARCHAR>>
               >>
) WITH (
  KAFKA_TOPIC  = 'match-history',
  KEY_FORMAT   = 'KAFKA',
  VALUE_FORMAT = 'JSON'
);

-- One row per round.
CREATE STREAM history_rounds
  WITH (KAFKA_TOPIC = 'ksql-history-rounds', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         humans,
         EXPLODE(rounds) AS r
    FROM match_history_stream
    EMIT CHANGES;

-- One row per vote, still carrying the round's robot seats.
CREATE STREAM history_votes
  WITH (KAFKA_TOPIC = 'ksql-history-votes', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         humans,
         r->robots AS robots,
         EXPLODE(r->votes) AS v
    FROM history_rounds
    EMIT CHANGES;

-- Flat votes: who voted, for whom, and whether each of them was human.
CREATE STREAM history_votes_flat
  WITH (KAFKA_TOPIC = 'ksql-history-votes-flat', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         template,
         v->voter AS voter,
         v->votedFor AS voted_for,
         CASE WHEN ARRAY_CONTAINS(humans, v->voter) THEN 'human' ELSE 'robot' END AS voter_kind,
         ARRAY_CONTAINS(humans, v->votedFor) AS named_a_human,
         robots
    FROM history_votes
    WHERE v->votedFor IS NOT NULL
    EMIT CHANGES;

-- Human detection accuracy: share of votes that named a human, for human voters and
-- for robot voters, over all finished matches.
CREATE TABLE human_detection_accuracy
  WITH (KAFKA_TOPIC = 'ksql-human-detection-accuracy', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT voter_kind,
         COUNT(*) AS votes,
         SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS correct,
         CAST(SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS accuracy
    FROM history_votes_flat
    GROUP BY voter_kind
    EMIT CHANGES;

SELECT * FROM human_detection_accuracy WHERE voter_kind = 'human';

-- The same per day and template.
CREATE TABLE human_detection_accuracy_daily
  WITH (KAFKA_TOPIC = 'ksql-human-detection-accuracy-daily', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT template,
         COUNT(*) AS votes,
         CAST(SUM(CASE WHEN named_a_human THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS accuracy
    FROM history_votes_flat
    WINDOW TUMBLING (SIZE 1 DAY)
    WHERE voter_kind = 'human'
    GROUP BY template
    EMIT CHANGES;

-- Per-personality fooled rate: each human vote in a round where a robot personality voiced
-- a seat is one chance to fool that human; the robot fooled them when the vote named its
-- seat. fooled_rate = times taken for human / chances.
CREATE STREAM history_human_vote_chances
  WITH (KAFKA_TOPIC = 'ksql-history-human-vote-chances', VALUE_FORMAT = 'JSON') AS
  SELECT matchId,
         voter,
         voted_for,
         EXPLODE(robots) AS robot
    FROM history_votes_flat
    WHERE voter_kind = 'human'
    EMIT CHANGES;

CREATE TABLE personality_fooled_rate
  WITH (KAFKA_TOPIC = 'ksql-personality-fooled-rate', PARTITIONS = 1, VALUE_FORMAT = 'JSON') AS
  SELECT robot->personality AS personality,
         COUNT(*) AS chances,
         SUM(CASE WHEN voted_for = robot->identity THEN 1 ELSE 0 END) AS taken_for_human,
         CAST(SUM(CASE WHEN voted_for = robot->identity THEN 1 ELSE 0 END) AS DOUBLE) / COUNT(*) AS fooled_rate
    FROM history_human_vote_chances
    GROUP BY robot->personality
    EMIT CHANGES;

-- Pull query: how convincing is one personality?
SELECT personality, chances, taken_for_human, fooled_rate
  FROM personality_fooled_rate
  WHERE personality = 'curious-student';

-- Leaderboard as it changes (push query; pull queries cannot ORDER BY).
SELECT personality, fooled_rate, chances
  FROM personality_fooled_rate
  EMIT CHANGES;
