-- The engine's page statement with rows (pullpage.go) for one bucket and the
-- client's private bucket, pages of 1000: the changelog page, then a
-- primary key probe with the membership test per entry.
\set cp random(0, 98000)
SELECT synchro_page.boundary, synchro_page.cut, synchro_page.seq, synchro_page.table_name, synchro_page.record_id, synchro_page.operation, coalesce(h0.f), coalesce(h0.u), h0.c0, h0.c1, h0.c2, h0.c3, h0.c4, h0.c5, h0.c6, h0.c7, h0.c8, h0.c9, h0.c10, h0.c11
  FROM (SELECT p.*,
               CASE WHEN p.table_name = 'rk_items' AND p.operation <> 3 AND (p.cut IS NULL OR p.seq <= p.cut)
                    THEN CAST(p.record_id AS bigint) END AS k0
          FROM (
SELECT (SELECT coalesce((SELECT boundary_seq FROM ri.compaction WHERE singleton), 0)), NULL::bigint, p.seq, p.table_name, p.record_id, p.operation
  FROM ((SELECT c.seq, c.table_name, c.record_id, c.operation
           FROM ((SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[1]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[2]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[3]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[4]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[5]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[6]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[7]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation FROM ri.changelog
                    WHERE bucket_id = (SELECT (:buckets::text[])[8]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)) AS c
          ORDER BY c.seq LIMIT 1000)
        UNION ALL
        SELECT NULL::bigint, NULL::text, NULL::text, NULL::smallint) AS p(seq, table_name, record_id, operation)
 ORDER BY p.seq) AS p(boundary, cut, seq, table_name, record_id, operation)
         ORDER BY p.seq OFFSET 0) AS synchro_page
  LEFT JOIN (SELECT x."id" AS k, true AS f, x."updated_at" AS u, x."id"::int8 AS c0, x."bucket"::text AS c1, x."title"::text AS c2, x."body"::text AS c3, x."quantity"::int8 AS c4, x."price"::numeric AS c5, x."due_at"::timestamptz AS c6, x."done"::bool AS c7, x."meta"::jsonb::text AS c8, x."created_at"::timestamptz AS c9, x."updated_at"::timestamptz AS c10, x."deleted_at"::timestamptz AS c11 FROM ri.items AS x WHERE x."deleted_at" IS NULL
   AND (CASE WHEN coalesce(x."bucket"::text, '') = '' THEN false ELSE 'team:' || x."bucket"::text IN (SELECT unnest(:subs::text[])) END)) AS h0 ON h0.k = synchro_page.k0
 ORDER BY synchro_page.seq;
