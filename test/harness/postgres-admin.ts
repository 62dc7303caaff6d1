import { Client } from 'pg';
import { databaseUrlFor } from './env';

/** Runs one statement on the server's `postgres` database (CREATE/DROP DATABASE cannot run in a transaction). */
export async function adminQuery(sql: string): Promise<void> {
  const client = new Client({ connectionString: databaseUrlFor('postgres') });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

export async function dropDatabase(name: string): Promise<void> {
  await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
}
