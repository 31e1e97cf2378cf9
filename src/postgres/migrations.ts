// The schema of the PostgreSQL store, as numbered migrations. `migrate()` applies the ones a
// database has not seen yet, in order, inside one transaction under an advisory lock, and
// records each in `<schema>.migrations`. Never edit a released migration: add the next one.

/** One step of the schema. `sql` gets the quoted schema name and the schema's lock key. */
export interface Migration {
  version: number;
  name: string;
  sql: (s: string, lockKey: string) => string;
}

/** Advisory-lock class ids (the first key of the two-key form); the second key is hashtext(schema). */
export const MIGRATE_LOCK = 0x74636d67; // 'tcmg'
export const COMMIT_LOCK = 0x7463636d; // 'tccm'

// Columns of an instance row, computed from the instance's JSON (`n`). The whole instance is
// kept in `data`; the columns exist so that filters, sweeps and the queue are indexable.
const INSTANCE_COLUMNS =
  'id, task_id, task_group, logical_date, state, attempt, version, backfill_id, lease_owner, lease_token, ' +
  'lease_expires_at, deadline_at, retry_at, created_at, updated_at, data';
const INSTANCE_VALUES = `n->>'id', n->>'taskId', n->>'group', n->>'logicalDate', n->>'state', (n->>'attempt')::int,
      (n->>'version')::int, n->>'backfillId', n->'lease'->>'owner', (n->'lease'->>'token')::bigint,
      (n->'lease'->>'expiresAt')::timestamptz, (n->>'deadlineAt')::timestamptz, (n->>'retryAt')::timestamptz,
      (n->>'createdAt')::timestamptz, (n->>'updatedAt')::timestamptz, n`;

const v1 = (s: string, lockKey: string) => `
CREATE TABLE ${s}.instances (
  id text PRIMARY KEY,
  task_id text NOT NULL,
  task_group text,
  logical_date text,
  state text NOT NULL,
  attempt integer NOT NULL,
  version integer NOT NULL,
  backfill_id text,
  lease_owner text,
  lease_token bigint,
  lease_expires_at timestamptz,
  deadline_at timestamptz,
  retry_at timestamptz,
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL,
  -- a dispatcher's short reservation of a queued instance (claimQueued); not part of the instance
  reserved_by text,
  reserved_until timestamptz,
  data jsonb NOT NULL,
  CONSTRAINT instances_task_date UNIQUE (task_id, logical_date)
) WITH (fillfactor = 70); -- room on each page for reservations to be HOT updates (no index writes)
CREATE INDEX instances_task ON ${s}.instances (task_id, id);
CREATE INDEX instances_group ON ${s}.instances (task_group, id) WHERE task_group IS NOT NULL;
CREATE INDEX instances_state ON ${s}.instances (state, id);
CREATE INDEX instances_backfill ON ${s}.instances (backfill_id, id) WHERE backfill_id IS NOT NULL;
CREATE INDEX instances_queue ON ${s}.instances (updated_at, id) WHERE state = 'queued';
CREATE INDEX instances_leases ON ${s}.instances (lease_expires_at) WHERE state IN ('running', 'pausing', 'stopping');
CREATE INDEX instances_deadlines ON ${s}.instances (deadline_at) WHERE state IN ('pausing', 'stopping') AND deadline_at IS NOT NULL;
CREATE INDEX instances_retries ON ${s}.instances (retry_at) WHERE state = 'failed' AND retry_at IS NOT NULL;

-- seq is the audit order: rows are inserted under the commit lock, so seq order is commit order
CREATE SEQUENCE ${s}.audit_seq;
CREATE TABLE ${s}.audit (
  seq bigint PRIMARY KEY DEFAULT nextval('${s}.audit_seq'),
  id text,
  at timestamptz,
  kind text,
  actor text,
  action text,
  command_id text,
  instance_id text,
  task_id text,
  backfill_id text,
  -- a command entry's instances, tasks and backfills, so that it matches those filters too
  instance_ids text[],
  task_ids text[],
  backfill_ids text[],
  entry jsonb NOT NULL
);
-- ids (ULIDs) and times grow with seq: block-range indexes serve afterId/since/until for almost nothing
CREATE INDEX audit_id ON ${s}.audit USING brin (id);
CREATE INDEX audit_at ON ${s}.audit USING brin (at);
CREATE INDEX audit_instance ON ${s}.audit (instance_id, seq) WHERE instance_id IS NOT NULL;
CREATE INDEX audit_command ON ${s}.audit (command_id, seq) WHERE command_id IS NOT NULL;
CREATE INDEX audit_actor ON ${s}.audit (actor, seq);
CREATE INDEX audit_action ON ${s}.audit (action, seq) WHERE action IS NOT NULL;
CREATE INDEX audit_kind ON ${s}.audit (kind, seq) WHERE kind <> 'transition';
CREATE INDEX audit_task ON ${s}.audit (task_id, seq) WHERE task_id IS NOT NULL;
CREATE INDEX audit_backfill ON ${s}.audit (backfill_id, seq) WHERE backfill_id IS NOT NULL;
CREATE INDEX audit_instance_ids ON ${s}.audit USING gin (instance_ids) WHERE instance_ids IS NOT NULL;
CREATE INDEX audit_task_ids ON ${s}.audit USING gin (task_ids) WHERE task_ids IS NOT NULL;
CREATE INDEX audit_backfill_ids ON ${s}.audit USING gin (backfill_ids) WHERE backfill_ids IS NOT NULL;

CREATE TABLE ${s}.scopes (
  id text PRIMARY KEY,
  held_seq bigserial,
  data jsonb NOT NULL
);

CREATE TABLE ${s}.commands (
  id text PRIMARY KEY,
  idempotency_key text UNIQUE,
  status text NOT NULL,
  version integer NOT NULL,
  due_at timestamptz,
  data jsonb NOT NULL
);
CREATE INDEX commands_status ON ${s}.commands (status, id);

CREATE TABLE ${s}.backfills (
  id text PRIMARY KEY,
  task_id text NOT NULL,
  state text NOT NULL,
  version integer NOT NULL,
  data jsonb NOT NULL
);
CREATE INDEX backfills_task ON ${s}.backfills (task_id, id);

-- One row per commit, numbered in commit order: what store notices are made of, and what a
-- process that missed a notification polls for. Pruned after a while.
CREATE SEQUENCE ${s}.commit_seq;
CREATE TABLE ${s}.commits (
  seq bigint PRIMARY KEY,
  grp text NOT NULL,
  idx integer NOT NULL,
  origin text NOT NULL,
  at timestamptz NOT NULL DEFAULT now(),
  instances jsonb,
  audit_first bigint,
  audit_last bigint,
  held jsonb,
  released text[],
  commands jsonb,
  backfills jsonb
);
-- snapshots are read once or twice and dropped: not worth compressing
ALTER TABLE ${s}.commits ALTER COLUMN instances SET STORAGE EXTERNAL;
CREATE INDEX commits_grp ON ${s}.commits (grp);
CREATE INDEX commits_at ON ${s}.commits (at);

-- Apply a whole group with set-based statements: the fast path. Conflicts are found up front
-- against the state before the group: a version that does not match, a record that an earlier
-- batch of the group also writes (the later batch loses, as it would have done committed after
-- it), a second instance for a (taskId, logicalDate), an idempotency key used before. Anything
-- unexpected (a concurrent insert of the same key, a value that does not cast) raises, and the
-- caller falls back to apply_each. Returns, per batch, {r: released scopes} or {e, m, d}.
CREATE FUNCTION ${s}.apply_group(g jsonb) RETURNS jsonb[] LANGUAGE plpgsql AS $fn$
DECLARE
  nb integer := jsonb_array_length(g);
  res jsonb[] := array_fill('{}'::jsonb, ARRAY[nb]);
  has_i boolean;
  has_s boolean;
  has_c boolean;
  has_b boolean;
  has_a boolean;
  bad record;
  want bigint;
  got bigint;
  released text[];
  kk integer;
  b jsonb;
BEGIN
  SELECT coalesce(bool_or(x ? 'i'), false), coalesce(bool_or(x ? 'h' OR x ? 'r'), false), coalesce(bool_or(x ? 'c'), false),
         coalesce(bool_or(x ? 'b'), false), coalesce(bool_or(x ? 'a'), false)
    INTO has_i, has_s, has_c, has_b, has_a
    FROM jsonb_array_elements(g) x;

  IF has_i THEN
    FOR bad IN
      WITH iw AS (
        SELECT t.k::int AS k, e->'n'->>'id' AS id, (e->>'v')::int AS v, e->'n'->>'taskId' AS task, e->'n'->>'logicalDate' AS ld
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'i', '[]')) e
      )
      SELECT DISTINCT ON (x.k) x.k, x.id, x.msg FROM (
        SELECT w.k, w.id, 1 AS pri, format('instance %s is at version %s, expected %s', w.id, coalesce(i.version, 0), w.v) AS msg
          FROM iw w LEFT JOIN ${s}.instances i ON i.id = w.id WHERE coalesce(i.version, 0) <> w.v
        UNION ALL
        SELECT d.k, d.id, 2, format('instance %s is written by an earlier commit of the same group', d.id)
          FROM (SELECT k, id, min(k) OVER (PARTITION BY id) AS first FROM iw) d WHERE d.k <> d.first
        UNION ALL
        SELECT d.k, d.id, 3, format('task %s already has an instance for %s', d.task, d.ld)
          FROM (SELECT k, id, task, ld, min(k) OVER (PARTITION BY task, ld) AS first FROM iw WHERE v = 0 AND ld IS NOT NULL) d
         WHERE d.k <> d.first
        UNION ALL
        SELECT w.k, w.id, 3, format('task %s already has an instance for %s', w.task, w.ld)
          FROM iw w JOIN ${s}.instances i ON i.task_id = w.task AND i.logical_date = w.ld WHERE w.v = 0 AND i.id <> w.id
      ) x ORDER BY x.k, x.pri
    LOOP
      res[bad.k] := jsonb_build_object('e', 'TK409', 'm', bad.msg, 'd', bad.id);
    END LOOP;
  END IF;
  IF has_c THEN
    FOR bad IN
      WITH cw AS (
        SELECT t.k::int AS k, e->'n'->>'id' AS id, (e->>'v')::int AS v, e->'n'->>'idempotencyKey' AS key
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'c', '[]')) e
      )
      SELECT DISTINCT ON (x.k) x.k, x.id, x.msg FROM (
        SELECT w.k, w.id, 1 AS pri, format('command %s is at version %s, expected %s', w.id, coalesce(c.version, 0), w.v) AS msg
          FROM cw w LEFT JOIN ${s}.commands c ON c.id = w.id WHERE coalesce(c.version, 0) <> w.v
        UNION ALL
        SELECT d.k, d.id, 2, format('command %s is written by an earlier commit of the same group', d.id)
          FROM (SELECT k, id, min(k) OVER (PARTITION BY id) AS first FROM cw) d WHERE d.k <> d.first
        UNION ALL
        SELECT d.k, d.id, 3, format('idempotency key %s was already used', d.key)
          FROM (SELECT k, id, key, min(k) OVER (PARTITION BY key) AS first FROM cw WHERE v = 0 AND key IS NOT NULL) d
         WHERE d.k <> d.first
        UNION ALL
        SELECT w.k, w.id, 3, format('idempotency key %s was already used', w.key)
          FROM cw w JOIN ${s}.commands c ON c.idempotency_key = w.key WHERE w.v = 0 AND c.id <> w.id
      ) x ORDER BY x.k, x.pri
    LOOP
      IF NOT (res[bad.k] ? 'e') THEN
        res[bad.k] := jsonb_build_object('e', 'TK409', 'm', bad.msg, 'd', bad.id);
      END IF;
    END LOOP;
  END IF;
  IF has_b THEN
    FOR bad IN
      WITH bw AS (
        SELECT t.k::int AS k, e->'n'->>'id' AS id, (e->>'v')::int AS v
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'b', '[]')) e
      )
      SELECT DISTINCT ON (x.k) x.k, x.id, x.msg FROM (
        SELECT w.k, w.id, 1 AS pri, format('backfill %s is at version %s, expected %s', w.id, coalesce(f.version, 0), w.v) AS msg
          FROM bw w LEFT JOIN ${s}.backfills f ON f.id = w.id WHERE coalesce(f.version, 0) <> w.v
        UNION ALL
        SELECT d.k, d.id, 2, format('backfill %s is written by an earlier commit of the same group', d.id)
          FROM (SELECT k, id, min(k) OVER (PARTITION BY id) AS first FROM bw) d WHERE d.k <> d.first
      ) x ORDER BY x.k, x.pri
    LOOP
      IF NOT (res[bad.k] ? 'e') THEN
        res[bad.k] := jsonb_build_object('e', 'TK409', 'm', bad.msg, 'd', bad.id);
      END IF;
    END LOOP;
  END IF;

  IF has_i THEN
    -- inserts; a unique key a concurrent commit took meanwhile sends the group to the slow path
    WITH src AS (
      SELECT e->'n' AS n
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'i', '[]')) e
       WHERE (e->>'v')::int = 0 AND NOT (res[t.k::int] ? 'e')
    ), ins AS (
      INSERT INTO ${s}.instances (${INSTANCE_COLUMNS})
      SELECT ${INSTANCE_VALUES} FROM src
      ON CONFLICT DO NOTHING
      RETURNING 1
    ) SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'a unique key was taken meanwhile';
    END IF;
    -- updates, still version-checked (a concurrent commit may have come between the check above
    -- and the row lock); rows are locked in id order, so groups never deadlock on them
    WITH d AS (
      SELECT DISTINCT ON (e->'n'->>'id') e->'n' AS n, (e->>'v')::int AS ev
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k),
             jsonb_array_elements(coalesce(t.b->'i', '[]')) WITH ORDINALITY AS u(e, o)
       WHERE (e->>'v')::int > 0 AND NOT (res[t.k::int] ? 'e')
       ORDER BY e->'n'->>'id', o DESC
    ), upd AS (
      UPDATE ${s}.instances AS i SET
        task_id = n->>'taskId', task_group = n->>'group', logical_date = n->>'logicalDate', state = n->>'state',
        attempt = (n->>'attempt')::int, version = (n->>'version')::int, backfill_id = n->>'backfillId',
        lease_owner = n->'lease'->>'owner', lease_token = (n->'lease'->>'token')::bigint,
        lease_expires_at = (n->'lease'->>'expiresAt')::timestamptz, deadline_at = (n->>'deadlineAt')::timestamptz,
        retry_at = (n->>'retryAt')::timestamptz, created_at = (n->>'createdAt')::timestamptz,
        updated_at = (n->>'updatedAt')::timestamptz, data = n, reserved_by = NULL, reserved_until = NULL
        FROM d WHERE i.id = d.n->>'id' AND i.version = d.ev
      RETURNING 1
    ) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM upd) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'an instance changed meanwhile';
    END IF;
  END IF;

  IF has_s THEN
    -- batch by batch: a hold and a later release of the same scope keep their order
    FOR kk IN
      SELECT t.k::int FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k)
       WHERE (t.b ? 'h' OR t.b ? 'r') AND NOT (res[t.k::int] ? 'e') ORDER BY t.k
    LOOP
      b := g->(kk - 1);
      released := '{}';
      IF b ? 'h' THEN
        INSERT INTO ${s}.scopes (id, data)
          SELECT DISTINCT ON (e->>'id') e->>'id', e
          FROM jsonb_array_elements(b->'h') WITH ORDINALITY AS t(e, o)
          ORDER BY e->>'id', o DESC
          ON CONFLICT (id) DO UPDATE SET data = excluded.data;
      END IF;
      IF b ? 'r' THEN
        WITH gone AS (
          DELETE FROM ${s}.scopes WHERE id IN (SELECT jsonb_array_elements_text(b->'r')) RETURNING id
        ) SELECT coalesce(array_agg(id), '{}') INTO released FROM gone;
      END IF;
      res[kk] := jsonb_build_object('r', to_jsonb(released));
    END LOOP;
  END IF;

  IF has_c THEN
    WITH src AS (
      SELECT e->'n' AS n
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'c', '[]')) e
       WHERE (e->>'v')::int = 0 AND NOT (res[t.k::int] ? 'e')
    ), ins AS (
      INSERT INTO ${s}.commands (id, idempotency_key, status, version, due_at, data)
      SELECT n->>'id', n->>'idempotencyKey', n->>'status', (n->>'version')::int, (n->>'dueAt')::timestamptz, n FROM src
      ON CONFLICT DO NOTHING
      RETURNING 1
    ) SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'a unique key was taken meanwhile';
    END IF;
    WITH d AS (
      SELECT DISTINCT ON (e->'n'->>'id') e->'n' AS n, (e->>'v')::int AS ev
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k),
             jsonb_array_elements(coalesce(t.b->'c', '[]')) WITH ORDINALITY AS u(e, o)
       WHERE (e->>'v')::int > 0 AND NOT (res[t.k::int] ? 'e')
       ORDER BY e->'n'->>'id', o DESC
    ), upd AS (
      UPDATE ${s}.commands AS c SET
        idempotency_key = n->>'idempotencyKey', status = n->>'status', version = (n->>'version')::int,
        due_at = (n->>'dueAt')::timestamptz, data = n
        FROM d WHERE c.id = d.n->>'id' AND c.version = d.ev
      RETURNING 1
    ) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM upd) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'a command changed meanwhile';
    END IF;
  END IF;

  IF has_b THEN
    WITH src AS (
      SELECT e->'n' AS n
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'b', '[]')) e
       WHERE (e->>'v')::int = 0 AND NOT (res[t.k::int] ? 'e')
    ), ins AS (
      INSERT INTO ${s}.backfills (id, task_id, state, version, data)
      SELECT n->>'id', n->>'taskId', n->>'state', (n->>'version')::int, n FROM src
      ON CONFLICT DO NOTHING
      RETURNING 1
    ) SELECT (SELECT count(*) FROM src), (SELECT count(*) FROM ins) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'a unique key was taken meanwhile';
    END IF;
    WITH d AS (
      SELECT DISTINCT ON (e->'n'->>'id') e->'n' AS n, (e->>'v')::int AS ev
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k),
             jsonb_array_elements(coalesce(t.b->'b', '[]')) WITH ORDINALITY AS u(e, o)
       WHERE (e->>'v')::int > 0 AND NOT (res[t.k::int] ? 'e')
       ORDER BY e->'n'->>'id', o DESC
    ), upd AS (
      UPDATE ${s}.backfills AS f SET
        task_id = n->>'taskId', state = n->>'state', version = (n->>'version')::int, data = n
        FROM d WHERE f.id = d.n->>'id' AND f.version = d.ev
      RETURNING 1
    ) SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM upd) INTO want, got;
    IF got <> want THEN
      RAISE EXCEPTION USING ERRCODE = 'TK000', MESSAGE = 'a backfill changed meanwhile';
    END IF;
  END IF;

  IF has_a THEN
    -- audit rows are written after the commit lock is taken; find here what could fail there
    PERFORM count((e->>'at')::timestamptz)
       FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k), jsonb_array_elements(coalesce(t.b->'a', '[]')) e
      WHERE NOT (res[t.k::int] ? 'e');
  END IF;

  FOR kk IN 1..nb LOOP
    IF res[kk] = '{}'::jsonb THEN
      res[kk] := '{"r": []}'::jsonb;
    END IF;
  END LOOP;
  RETURN res;
END
$fn$;

-- Apply one batch (without its audit), for the slow path. Raises TK409 on a version
-- mismatch; a unique violation raises 23505. Returns the ids of the scopes it released.
CREATE FUNCTION ${s}.apply_batch(b jsonb) RETURNS text[] LANGUAGE plpgsql AS $fn$
DECLARE
  one jsonb := jsonb_build_array(b);
  res jsonb[];
BEGIN
  res := ${s}.apply_group(one);
  IF res[1] ? 'e' THEN
    RAISE EXCEPTION USING ERRCODE = 'TK409', MESSAGE = res[1]->>'m', DETAIL = res[1]->>'d';
  END IF;
  RETURN ARRAY(SELECT jsonb_array_elements_text(res[1]->'r'));
END
$fn$;

-- The slow path: each batch in its own subtransaction, one after the other, so that whatever
-- one batch runs into fails that batch alone, with its own SQLSTATE.
CREATE FUNCTION ${s}.apply_each(g jsonb) RETURNS jsonb[] LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := jsonb_array_length(g);
  res jsonb[] := '{}';
  rel text[];
  det text;
  cst text;
BEGIN
  FOR k IN 1..n LOOP
    BEGIN
      rel := ${s}.apply_batch(g->(k - 1));
      res := res || jsonb_build_object('r', to_jsonb(rel));
    EXCEPTION WHEN OTHERS THEN
      GET STACKED DIAGNOSTICS det = PG_EXCEPTION_DETAIL, cst = CONSTRAINT_NAME;
      res := res || jsonb_build_object('e', SQLSTATE, 'm', SQLERRM, 'd', det, 'c', cst);
    END;
  END LOOP;
  RETURN res;
END
$fn$;

-- Commit rows after \`after\` up to \`upto\` (but those in \`skip\`), each with its audit entries:
-- what store notices are made of.
CREATE FUNCTION ${s}.fetch_commits(after bigint, upto bigint, skip bigint[], lim integer)
RETURNS TABLE (seq bigint, instances jsonb, held jsonb, released text[], commands jsonb, backfills jsonb, audit jsonb)
LANGUAGE sql STABLE SET jit = off AS $fn$
  SELECT c.seq, c.instances, c.held, c.released, c.commands, c.backfills,
         CASE WHEN c.audit_first IS NULL THEN '[]'::jsonb ELSE
           (SELECT coalesce(jsonb_agg(a.entry ORDER BY a.seq), '[]'::jsonb) FROM ${s}.audit a
             WHERE a.seq BETWEEN c.audit_first AND c.audit_last) END
    FROM ${s}.commits c
   WHERE c.seq > after AND c.seq <= upto AND NOT (c.seq = ANY(skip))
   ORDER BY c.seq
   LIMIT lim
$fn$;

-- Reserve up to lim queued instances for a dispatcher, skipping those another one holds or
-- is reserving right now. Changes no version and notifies nobody: the dispatcher still claims
-- each instance with a version-checked commit. A reservation is a hint that lasts hold_ms,
-- so it need not survive a crash: its transaction commits without waiting for the disk.
CREATE FUNCTION ${s}.claim_queued(claimer text, hold_ms integer, lim integer, held_tasks text[], held_groups text[], held_backfills text[])
RETURNS SETOF jsonb LANGUAGE plpgsql SET jit = off AS $fn$
BEGIN
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN QUERY
  WITH c AS (
    SELECT q.id FROM ${s}.instances q
    WHERE q.state = 'queued'
      AND (q.reserved_until IS NULL OR q.reserved_until < clock_timestamp() OR q.reserved_by = claimer)
      AND NOT (q.task_id = ANY(held_tasks))
      AND (q.task_group IS NULL OR NOT (q.task_group = ANY(held_groups)))
      AND (q.backfill_id IS NULL OR NOT (q.backfill_id = ANY(held_backfills)))
    ORDER BY q.updated_at, q.id
    LIMIT lim
    FOR UPDATE SKIP LOCKED
  ), u AS (
    UPDATE ${s}.instances i SET reserved_by = claimer, reserved_until = clock_timestamp() + hold_ms * interval '1 millisecond'
    FROM c WHERE i.id = c.id
    RETURNING i.data, i.updated_at, i.id
  )
  SELECT u.data FROM u ORDER BY u.updated_at, u.id;
END
$fn$;

-- Commit a group of batches in one transaction: each batch applies entirely or not at all, and
-- one batch's conflict fails that batch only. The batches that applied then get their audit
-- rows and a commit row each under the schema's commit lock, so that commit numbers and audit
-- order follow commit order, and one notification tells the listeners.
-- Returns, per batch, {s: commit seq, r: released scopes} or {e: sqlstate, m: message, d: detail}.
-- The planner takes every jsonb_array_elements() for 100 rows and would join a group's few
-- records to whole tables with hash joins; a commit touches a handful of rows by key, so it
-- plans (and caches the plans of everything it calls) with index lookups only, and without
-- JIT compilation, which those inflated estimates would otherwise trigger on every call.
CREATE FUNCTION ${s}.commit_group(g jsonb, grp text, origin text, channel text) RETURNS jsonb LANGUAGE plpgsql
SET enable_seqscan = off SET enable_hashjoin = off SET enable_mergejoin = off SET jit = off AS $fn$
DECLARE
  n integer := jsonb_array_length(g);
  res jsonb[];
  ngood integer;
  naudit bigint;
  abase bigint;
  cbase bigint;
  rank integer := 0;
  payload text;
BEGIN
  BEGIN
    res := ${s}.apply_group(g);
  EXCEPTION WHEN OTHERS THEN
    res := ${s}.apply_each(g);
  END;

  SELECT count(*), coalesce(sum(jsonb_array_length(coalesce(t.b->'a', '[]'))), 0) INTO ngood, naudit
    FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k) WHERE NOT (res[t.k::int] ? 'e');
  IF ngood = 0 THEN
    RETURN to_jsonb(res);
  END IF;

  PERFORM pg_advisory_xact_lock(${COMMIT_LOCK}, ${lockKey});
  -- numbers are taken in blocks: under the lock nobody else draws from these sequences
  IF naudit > 0 THEN
    abase := nextval('${s}.audit_seq');
    IF naudit > 1 THEN
      PERFORM setval('${s}.audit_seq', abase + naudit - 1);
    END IF;
    INSERT INTO ${s}.audit (seq, id, at, kind, actor, action, command_id, instance_id, task_id, backfill_id,
                            instance_ids, task_ids, backfill_ids, entry)
    SELECT abase + row_number() OVER (ORDER BY t.k, u.o) - 1,
           e->>'id', (e->>'at')::timestamptz, e->>'kind', e->>'actor', e->>'action', e->>'commandId',
           e->>'instanceId', e->>'taskId', e->>'backfillId',
           CASE WHEN jsonb_typeof(e->'instanceIds') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(e->'instanceIds')) END,
           CASE WHEN jsonb_typeof(e->'taskIds') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(e->'taskIds')) END,
           CASE WHEN jsonb_typeof(e->'backfillIds') = 'array' THEN ARRAY(SELECT jsonb_array_elements_text(e->'backfillIds')) END,
           e
      FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k),
           jsonb_array_elements(coalesce(t.b->'a', '[]')) WITH ORDINALITY AS u(e, o)
     WHERE NOT (res[t.k::int] ? 'e');
  END IF;
  cbase := nextval('${s}.commit_seq');
  IF ngood > 1 THEN
    PERFORM setval('${s}.commit_seq', cbase + ngood - 1);
  END IF;
  INSERT INTO ${s}.commits (seq, grp, idx, origin, instances, audit_first, audit_last, held, released, commands, backfills)
  SELECT cbase + x.rn - 1, grp, x.k - 1, origin, x.b->'i',
         CASE WHEN x.na > 0 THEN abase + x.before END,
         CASE WHEN x.na > 0 THEN abase + x.before + x.na - 1 END,
         x.b->'h', ARRAY(SELECT jsonb_array_elements_text(res[x.k]->'r')), x.b->'c', x.b->'b'
    FROM (
      SELECT t.k::int AS k, t.b, jsonb_array_length(coalesce(t.b->'a', '[]')) AS na,
             row_number() OVER (ORDER BY t.k) AS rn,
             coalesce(sum(jsonb_array_length(coalesce(t.b->'a', '[]'))) OVER (ORDER BY t.k ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
        FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k)
       WHERE NOT (res[t.k::int] ? 'e')
    ) x;
  FOR k IN 1..n LOOP
    CONTINUE WHEN res[k] ? 'e';
    res[k] := res[k] || jsonb_build_object('s', cbase + rank);
    rank := rank + 1;
  END LOOP;
  -- a small group travels whole in the notification, which spares listeners a fetch; the
  -- payload stays under PostgreSQL's 8000-byte limit, else it carries the last number only
  IF pg_column_size(g) < 6000 THEN
    SELECT json_build_object('s', cbase + ngood - 1, 'o', origin, 'n', json_agg(json_build_object(
             's', res[t.k::int]->'s', 'i', t.b->'i', 'a', t.b->'a', 'h', t.b->'h', 'r', res[t.k::int]->'r',
             'c', t.b->'c', 'b', t.b->'b') ORDER BY t.k))::text
      INTO payload
      FROM jsonb_array_elements(g) WITH ORDINALITY AS t(b, k) WHERE NOT (res[t.k::int] ? 'e');
  END IF;
  IF payload IS NULL OR octet_length(payload) > 7900 THEN
    payload := json_build_object('s', cbase + ngood - 1, 'o', origin)::text;
  END IF;
  PERFORM pg_notify(channel, payload);
  RETURN to_jsonb(res);
END
$fn$;
`;

/** Every migration, oldest first. */
export const MIGRATIONS: readonly Migration[] = [{ version: 1, name: 'tables, indexes and the commit function', sql: v1 }];
