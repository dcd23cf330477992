package store

// This file holds the checks, made before anything else runs, that the
// library's tables exist and that the role may use them. They read the
// catalogs, which any role may read, so that a role without the grants is
// told so apart from a database that is not migrated.

// CheckSetup reads, for each of the objects named by $1 and $2 (a table of
// schema synchro and one of its columns, empty for none), whether it exists
// and whether the current role may read and write its table, as one text
// "ordinal:exists:granted,..."; and the current role's name and whether it
// bypasses row-level security (superuser or BYPASSRLS). synchro's
// NewEngine runs it.
//
// $1 text[] tables, $2 text[] columns -> text role, boolean bypasses RLS,
// text answers
const CheckSetup = `
SELECT current_user::text, r.rolsuper OR r.rolbypassrls,
       (SELECT string_agg(m.o::text || ':' ||
                    (c.oid IS NOT NULL AND (m.col = '' OR EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = m.col AND NOT a.attisdropped)))::text || ':' ||
                    (c.oid IS NOT NULL AND has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT, INSERT, UPDATE, DELETE'))::text,
                          ',' ORDER BY m.o)
               FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS m(tbl, col, o)
               LEFT JOIN pg_namespace n ON n.nspname = 'synchro'
               LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.tbl)
  FROM pg_roles r WHERE r.rolname = current_user`

// CheckChangelogDB reads, for the wal consumer's ChangelogDB, which of the
// tables of schema synchro $1 are missing (", "-separated, empty when
// none; an entry table.column names a column of the table), the current
// role, and which of the registered tables $2 (a JSON array of quoted
// names) row-level security applies to for it.
//
// $1 text[] tables of schema synchro, $2 jsonb registered tables -> text
// missing, text role, text tables under RLS
const CheckChangelogDB = `
SELECT coalesce((SELECT string_agg('synchro.' || t, ', ' ORDER BY t) FROM unnest($1::text[]) AS t
                  WHERE NOT EXISTS (SELECT 1 FROM pg_attribute
                                     WHERE attrelid = to_regclass('synchro.' || split_part(t, '.', 1))
                                       AND (strpos(t, '.') = 0 OR attname = split_part(t, '.', 2) AND NOT attisdropped))), ''),
       current_user::text,
       coalesce((SELECT string_agg(q.name, ', ' ORDER BY q.ord)
                   FROM jsonb_array_elements_text($2::jsonb) WITH ORDINALITY AS q(name, ord)
                  WHERE to_regclass(q.name) IS NOT NULL AND row_security_active(to_regclass(q.name))), '')`

// RowSecurityOnWrites reads whether row-level security applies, for the
// current role, to synchro.changelog or synchro.bucket_edges, the tables
// the wal consumer writes by COPY, which PostgreSQL refuses into such a
// table (row_security_active asks the check COPY makes).
//
// no parameters -> boolean
const RowSecurityOnWrites = `SELECT row_security_active('synchro.changelog') OR row_security_active('synchro.bucket_edges')`
