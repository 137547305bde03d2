"""The workspace's SQLite schema, as migrations: version -> SQL run inside one transaction.

Append a migration, never edit a released one: a workspace made by an older cvlab is upgraded in place when it
is opened (``cvlab.workspace.store.Store._migrate``), all or nothing.
"""
from __future__ import annotations

MIGRATIONS: dict[int, str] = {1: """
CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE projects (
  id TEXT PRIMARY KEY, name TEXT NOT NULL COLLATE NOCASE UNIQUE, description TEXT NOT NULL DEFAULT '',
  domain_id TEXT NOT NULL, classification_type TEXT NOT NULL, project_type TEXT NOT NULL,
  target_export_platforms TEXT NOT NULL DEFAULT '[]', settings TEXT NOT NULL DEFAULT '{}',
  status TEXT NOT NULL DEFAULT 'Succeeded', iteration_counter INTEGER NOT NULL DEFAULT 0,
  created TEXT NOT NULL, last_modified TEXT NOT NULL);
CREATE TABLE tags (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL COLLATE NOCASE, description TEXT NOT NULL DEFAULT '', type TEXT NOT NULL,
  created TEXT NOT NULL, UNIQUE (project_id, name));
CREATE TABLE images (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  sha256 TEXT NOT NULL, original_name TEXT, width INTEGER NOT NULL, height INTEGER NOT NULL,
  format TEXT NOT NULL, metadata TEXT NOT NULL DEFAULT '{}', created TEXT NOT NULL,
  UNIQUE (project_id, sha256));
CREATE INDEX images_sha ON images(sha256);
CREATE TABLE image_tags (
  image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
  created TEXT NOT NULL, PRIMARY KEY (image_id, tag_id));
CREATE INDEX image_tags_tag ON image_tags(tag_id);
CREATE TABLE regions (
  id TEXT PRIMARY KEY, image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
  tag_id TEXT NOT NULL REFERENCES tags(id) ON DELETE CASCADE,
  left REAL NOT NULL, top REAL NOT NULL, width REAL NOT NULL, height REAL NOT NULL, created TEXT NOT NULL);
CREATE INDEX regions_image ON regions(image_id);
CREATE INDEX regions_tag ON regions(tag_id);
CREATE TABLE iterations (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL COLLATE NOCASE, status TEXT NOT NULL, created TEXT NOT NULL, last_modified TEXT NOT NULL,
  trained_at TEXT, domain_id TEXT, classification_type TEXT, training_type TEXT NOT NULL DEFAULT 'Regular',
  reserved_budget_in_hours INTEGER NOT NULL DEFAULT 0, training_time_in_minutes INTEGER NOT NULL DEFAULT 0,
  publish_name TEXT, original_publish_resource_id TEXT, exportable INTEGER NOT NULL DEFAULT 0,
  training_error_details TEXT, seed INTEGER NOT NULL DEFAULT 0, queue_position INTEGER,
  UNIQUE (project_id, name));
CREATE UNIQUE INDEX iterations_publish ON iterations(project_id, publish_name) WHERE publish_name IS NOT NULL;
CREATE TABLE predictions (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  iteration_id TEXT, created TEXT NOT NULL, sha256 TEXT NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
  predictions TEXT NOT NULL, application TEXT, domain_id TEXT);
CREATE INDEX predictions_project ON predictions(project_id, created);
CREATE INDEX predictions_sha ON predictions(sha256);
CREATE TABLE exports (
  id TEXT PRIMARY KEY, project_id TEXT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  iteration_id TEXT NOT NULL REFERENCES iterations(id) ON DELETE CASCADE,
  platform TEXT NOT NULL, flavor TEXT, status TEXT NOT NULL, download_uri TEXT NOT NULL DEFAULT '', path TEXT,
  created TEXT NOT NULL, last_modified TEXT NOT NULL, newer_version_available INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE quiz_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT, quiz_id TEXT NOT NULL, question_id TEXT NOT NULL, answer TEXT,
  correct INTEGER NOT NULL, score REAL, created TEXT NOT NULL);
CREATE INDEX quiz_results_quiz ON quiz_results(quiz_id, question_id);
CREATE TABLE usage (month TEXT NOT NULL, kind TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (month, kind));

""",
    # 2: progress lives in the quiz engine's own setting (cvlab.quiz); the table nobody read goes
    2: """
DROP INDEX IF EXISTS quiz_results_quiz;
DROP TABLE IF EXISTS quiz_results;
"""}
SCHEMA_VERSION = max(MIGRATIONS)
