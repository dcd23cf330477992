-- The same page read from a changelog that keeps each entry's row image:
-- the changelog page alone, with the image column, no probe.
\set cp random(0, 98000)
SELECT (SELECT coalesce((SELECT boundary_seq FROM ri.compaction WHERE singleton), 0)), NULL::bigint, p.seq, p.table_name, p.record_id, p.operation, p.image
  FROM ((SELECT c.seq, c.table_name, c.record_id, c.operation, c.image
           FROM ((SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[1]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[2]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[3]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[4]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[5]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[6]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[7]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)
                 UNION ALL
                 (SELECT seq, table_name, record_id, operation, image FROM ri.changelog_img
                    WHERE bucket_id = (SELECT (:buckets::text[])[8]) AND seq > :cp ORDER BY seq LIMIT 1000 + 1)) AS c
          ORDER BY c.seq LIMIT 1000)
        UNION ALL
        SELECT NULL::bigint, NULL::text, NULL::text, NULL::smallint, NULL::text) AS p(seq, table_name, record_id, operation, image)
 ORDER BY p.seq;
