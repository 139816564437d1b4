-- A lake's history: the tables and the migration of a file's (sql/004_history.sql); and the
-- guard that serialised the inserts of placeholders, which are gone, is dropped.
-- @include 004_history.sql
DROP TABLE IF EXISTS dim_guard;
