-- The fixture of docs/bench/rowimages.sh, in the schema ri of a scratch
-- database: BenchmarkPullBuckets' table (buckets=1, 100,000 rows, one
-- create each in the changelog), the changelog as migrations create it,
-- and the same changelog with each entry's row image (the row's JSON as
-- a pull delivers it), which synchro does not have.
DROP SCHEMA IF EXISTS ri CASCADE;
CREATE SCHEMA ri;
CREATE TABLE ri.items (
	id         bigint PRIMARY KEY,
	bucket     text        NOT NULL,
	title      text        NOT NULL,
	body       text,
	quantity   integer     NOT NULL,
	price      numeric(12,2),
	due_at     timestamptz,
	done       boolean     NOT NULL DEFAULT false,
	meta       jsonb,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	deleted_at timestamptz
);
INSERT INTO ri.items (id, bucket, title, body, quantity, price, due_at, done, meta)
SELECT g, '0', 'item ' || g, repeat('lorem ipsum ', 1 + (g % 8)::int), (g % 1000)::int, (g % 100000) / 100.0,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 minute', g % 3 = 0,
       jsonb_build_object('n', g, 'tag', 'tag' || g % 17, 'flags', jsonb_build_array(g % 2 = 0, g % 5))
  FROM generate_series(1, 100000) AS g;
CREATE TABLE ri.changelog (
	seq        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	bucket_id  text        NOT NULL,
	table_name text        NOT NULL,
	record_id  text        NOT NULL,
	operation  smallint    NOT NULL CHECK (operation IN (1, 2, 3)),
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ON ri.changelog (bucket_id, seq);
CREATE INDEX ON ri.changelog (table_name, record_id, bucket_id, seq);
INSERT INTO ri.changelog (bucket_id, table_name, record_id, operation)
SELECT 'team:0', 'rk_items', g::text, 1 FROM generate_series(1, 100000) AS g ORDER BY g;
CREATE TABLE ri.changelog_img (LIKE ri.changelog INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING IDENTITY, image text);
ALTER TABLE ri.changelog_img ADD PRIMARY KEY (seq);
CREATE INDEX ON ri.changelog_img (bucket_id, seq);
CREATE INDEX ON ri.changelog_img (table_name, record_id, bucket_id, seq);
INSERT INTO ri.changelog_img (seq, bucket_id, table_name, record_id, operation, image) OVERRIDING SYSTEM VALUE
SELECT l.seq, l.bucket_id, l.table_name, l.record_id, l.operation, row_to_json(x)::text
  FROM ri.changelog AS l JOIN ri.items AS x ON x.id = l.record_id::bigint ORDER BY l.seq;
SELECT setval(pg_get_serial_sequence('ri.changelog_img', 'seq'), (SELECT max(seq) FROM ri.changelog_img)) \g /dev/null
-- A compaction boundary, as synchro.compaction holds it.
CREATE TABLE ri.compaction (singleton boolean PRIMARY KEY DEFAULT true, boundary_seq bigint NOT NULL);
INSERT INTO ri.compaction VALUES (true, 0);
-- What the COPY comparison writes: 20,000 entries, without and with images.
CREATE TABLE ri.copy_plain AS SELECT bucket_id, table_name, record_id, operation FROM ri.changelog WHERE seq <= 20000;
CREATE TABLE ri.copy_img AS SELECT bucket_id, table_name, record_id, operation, image FROM ri.changelog_img WHERE seq <= 20000;
-- The changelog's statistics as migration 0003 sets them (bucket_id's
-- n_distinct), so that both statements read each bucket by the
-- (bucket_id, seq) index; with the single bucket's own statistics the
-- planner walks the primary key for the empty private bucket, in both.
ALTER TABLE ri.changelog ALTER COLUMN bucket_id SET (n_distinct = -0.01);
ALTER TABLE ri.changelog_img ALTER COLUMN bucket_id SET (n_distinct = -0.01);
