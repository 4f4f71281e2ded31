-- Named queries of `share-bridge store copy` (bridge.store.copy): the catalogues it reads to
-- match a SQLite store's tables and columns with a PostgreSQL store's, by name.

-- sqlite_tables --
-- The store's tables (SQLite's own and the migration bookkeeping left out)
SELECT name FROM sqlite_schema
 WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' AND name <> 'schema_version'
 ORDER BY name;

-- sqlite_parents --
-- The tables a table's foreign keys point at
SELECT DISTINCT "table" FROM pragma_foreign_key_list(:table);

-- sqlite_without_rowid --
-- 1 when a table has no rowid (its rows have no insertion order to keep)
SELECT wr FROM pragma_table_list WHERE schema = 'main' AND name = :table;

-- postgres_columns --
-- Every column of the target schema's tables, with its type and whether it is an identity
SELECT table_name, column_name, data_type, is_identity = 'YES' AS is_identity
  FROM information_schema.columns
 WHERE table_schema = %(schema)s
 ORDER BY table_name, ordinal_position;
