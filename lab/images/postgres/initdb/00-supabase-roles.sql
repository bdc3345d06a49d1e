-- Roles the Supabase stack's init SQL and services expect to exist after
-- initdb (the official image creates them in its baked migrations).
create role supabase_replication_admin with login replication;
create role postgres with login createdb createrole replication nosuperuser;
create role anon nologin noinherit;
create role authenticated nologin noinherit;
create role service_role nologin noinherit bypassrls;
create role authenticator with login noinherit;
grant anon, authenticated, service_role to authenticator;
create role supabase_auth_admin with login noinherit createrole;
create role supabase_storage_admin with login noinherit createrole;
create role supabase_functions_admin with login noinherit createrole;
create role dashboard_user with nologin createrole createdb replication;
create role pgbouncer with login;
create schema if not exists pgbouncer authorization pgbouncer;
create or replace function pgbouncer.get_auth(p_usename text)
  returns table(username text, password text)
  language sql security definer
  as $$ select usename::text, passwd::text from pg_catalog.pg_shadow where usename = p_usename $$;
revoke all on function pgbouncer.get_auth(text) from public;
grant execute on function pgbouncer.get_auth(text) to pgbouncer;
