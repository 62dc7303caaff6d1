import { type DataSource, type EntityManager } from 'typeorm';
import { type PreparedStatement } from './prepared';

/** A node-postgres query result, as far as it is read here. */
interface QueryResult {
  command: string;
  rows: unknown[];
}

/** node-postgres's client, as TypeORM's query runner hands it out: statements queue on it in issue order. */
interface QueuingClient {
  query(text: string): Promise<QueryResult>;
  query(config: { name: string; text: string; values: unknown[] }): Promise<QueryResult>;
}

/** What the work can ask of its transaction besides statements through the manager. */
export interface PipelinedTransactionControl {
  /**
   * Sends `statement` as the transaction's last one, with COMMIT queued right behind it, and
   * answers its rows. COMMIT thus leaves from the socket callback that answers the statement,
   * instead of waiting for the process to come back to it through a busy event loop.
   *
   * Nothing may follow it: a later statement through the manager is refused (it would run
   * outside the transaction). A statement that fails here still rolls everything back
   * (Postgres answers the queued COMMIT with ROLLBACK); the work must not fail afterwards for
   * reasons of its own, since by then the commit cannot be stopped.
   */
  finalStatement<T>(statement: PreparedStatement, values: readonly unknown[]): Promise<T[]>;
}

/**
 * A transaction whose BEGIN does not wait for its own answer: it is queued on the connection,
 * and `work`'s first statement queues behind it. node-postgres sends a queued statement as soon
 * as the one before it is answered, from the same socket callback, so the first statement no
 * longer waits for the process to come back to it through a busy event loop (on bench/api,
 * BEGIN alone took ~4.5 ms of a ~25 ms creation batch). Otherwise as TypeORM's
 * `dataSource.transaction`: COMMIT when `work` resolves, ROLLBACK when it throws. The work may
 * also queue COMMIT behind its last statement (`finalStatement`).
 *
 * BEGIN is enqueued synchronously, before `work` runs, so no statement of `work` can reach the
 * connection ahead of it. Its outcome is awaited before COMMIT: a BEGIN that failed (the
 * connection lost) fails the transaction.
 */
export async function pipelinedTransaction<T>(
  dataSource: DataSource,
  work: (manager: EntityManager, control: PipelinedTransactionControl) => Promise<T>,
): Promise<T> {
  const runner = dataSource.createQueryRunner();
  const client = (await runner.connect()) as QueuingClient;
  const begun = client.query('START TRANSACTION');
  // Awaited below; until then its rejection must not count as unhandled.
  begun.catch(() => undefined);
  // What TypeORM's startTransaction sets, so code inside (the deferred audit log) sees a transaction.
  const state = runner as unknown as { isTransactionActive: boolean; query: unknown };
  state.isTransactionActive = true;
  let committing: Promise<QueryResult> | undefined;
  const control: PipelinedTransactionControl = {
    finalStatement: <R>(statement: PreparedStatement, values: readonly unknown[]): Promise<R[]> => {
      if (committing) throw new Error('the transaction has sent its last statement already');
      const answer = client.query({ name: statement.name, text: statement.text, values: [...values] });
      committing = client.query('COMMIT');
      committing.catch(() => undefined);
      // Only this runner is closed to statements: it is the transaction's own, released below.
      state.query = () =>
        Promise.reject(new Error('no statement may follow the transaction’s last statement'));
      return answer.then((result) => result.rows as R[]);
    },
  };
  try {
    const result = await work(runner.manager, control);
    await begun;
    if (committing) {
      const outcome = await committing;
      // COMMIT of a transaction that a statement aborted answers ROLLBACK, with no error.
      if (outcome.command !== 'COMMIT') throw new Error(`the transaction ended with ${outcome.command}`);
    } else await runner.query('COMMIT');
    return result;
  } catch (error) {
    if (committing) {
      const outcome = await committing.catch(() => undefined);
      if (outcome?.command === 'COMMIT')
        throw new Error('the transaction committed, but its work failed after its last statement', {
          cause: error,
        });
      throw error;
    }
    try {
      await runner.query('ROLLBACK');
    } catch {
      // The original error is the one to report; a lost connection is discarded by the pool.
    }
    throw error;
  } finally {
    state.isTransactionActive = false;
    delete (state as { query?: unknown }).query;
    await runner.release();
  }
}
