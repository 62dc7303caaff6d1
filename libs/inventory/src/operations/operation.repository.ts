import { type OperationStore, type OperationView } from '@norm/core';
import { type DataSource } from 'typeorm';
import { OperationEntity } from '../entities/operation.entity';

export class OperationRepository implements OperationStore {
  constructor(private readonly dataSource: DataSource) {}

  async get(id: string): Promise<OperationView | undefined> {
    const row = await this.dataSource.getRepository(OperationEntity).findOneBy({ id });
    return row ? toView(row) : undefined;
  }

  async finish(id: string, state: 'succeeded' | 'failed', error?: Record<string, unknown>): Promise<boolean> {
    const result = await this.dataSource.query<[unknown[], number]>(
      `UPDATE "operations" SET "state" = $2, "error" = $3, "finished_at" = now(), "updated_at" = now(),
         "version" = "version" + 1
       WHERE "id" = $1 AND "state" IN ('pending', 'running')`,
      [id, state, error ? JSON.stringify(error) : null],
    );
    return result[1] === 1;
  }

  async appendStep(id: string, name: string, detail?: Record<string, unknown>): Promise<void> {
    const step = { name, at: new Date().toISOString(), ...(detail ? { detail } : {}) };
    await this.dataSource.query(
      `UPDATE "operations" SET "steps" = "steps" || $2::jsonb, "updated_at" = now() WHERE "id" = $1`,
      [id, JSON.stringify([step])],
    );
  }
}

function toView(row: OperationEntity): OperationView {
  return {
    id: row.id,
    kind: row.kind,
    targetType: row.targetType,
    targetId: row.targetId,
    state: row.state,
    steps: row.steps as OperationView['steps'],
    error: row.error,
    requestedBy: row.requestedBy,
    createdAt: row.createdAt,
    finishedAt: row.finishedAt,
  };
}
