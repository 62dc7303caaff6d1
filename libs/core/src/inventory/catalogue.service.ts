import { type AuditEventInput } from '../audit';
import { NotFound } from '../errors';
import { type ActingContext, actorOf } from '../identity';
import { validateNetworkRange } from '../ipam/ipv4';
import {
  type ImageRecord,
  type InventoryUnitOfWork,
  type NetworkRecord,
  type NetworkUsage,
  type NewImage,
  type NewNetwork,
} from './catalogue.port';

/** The image catalogue and the guest networks: what a VM request may name. */
export class CatalogueService {
  constructor(private readonly uow: InventoryUnitOfWork) {}

  listImages(): Promise<ImageRecord[]> {
    return this.uow.run((tx) => tx.images.list());
  }

  async getImage(id: string): Promise<ImageRecord> {
    const image = await this.uow.run((tx) => tx.images.get(id));
    if (!image) throw new NotFound('image', id);
    return image;
  }

  createImage(ctx: ActingContext, input: NewImage): Promise<ImageRecord> {
    return this.uow.run(async (tx) => {
      const image = await tx.images.create(input);
      await tx.audit.append(event(ctx, 'image.create', 'image', image.id, null, { ...image }));
      return image;
    });
  }

  updateImage(ctx: ActingContext, id: string, patch: Partial<NewImage>): Promise<ImageRecord> {
    return this.uow.run(async (tx) => {
      const before = await tx.images.get(id);
      const after = before && (await tx.images.update(id, patch));
      if (!before || !after) throw new NotFound('image', id);
      await tx.audit.append(event(ctx, 'image.update', 'image', id, { ...before }, { ...after }));
      return after;
    });
  }

  deleteImage(ctx: ActingContext, id: string): Promise<void> {
    return this.uow.run(async (tx) => {
      const before = await tx.images.get(id);
      if (!before || !(await tx.images.delete(id))) throw new NotFound('image', id);
      await tx.audit.append(event(ctx, 'image.delete', 'image', id, { ...before }, null));
    });
  }

  listNetworks(): Promise<NetworkRecord[]> {
    return this.uow.run((tx) => tx.networks.list());
  }

  async getNetwork(id: string): Promise<NetworkRecord & { usage: NetworkUsage }> {
    return this.uow.run(async (tx) => {
      const network = await tx.networks.get(id);
      if (!network) throw new NotFound('network', id);
      return { ...network, usage: await tx.networks.usage(id) };
    });
  }

  createNetwork(ctx: ActingContext, input: NewNetwork): Promise<NetworkRecord> {
    validateNetworkRange(input);
    return this.uow.run(async (tx) => {
      const network = await tx.networks.create(input);
      await tx.audit.append(event(ctx, 'network.create', 'network', network.id, null, { ...network }));
      return network;
    });
  }

  deleteNetwork(ctx: ActingContext, id: string): Promise<void> {
    return this.uow.run(async (tx) => {
      const before = await tx.networks.get(id);
      if (!before || !(await tx.networks.delete(id))) throw new NotFound('network', id);
      await tx.audit.append(event(ctx, 'network.delete', 'network', id, { ...before }, null));
    });
  }
}

function event(
  ctx: ActingContext,
  action: string,
  objectType: string,
  objectId: string,
  before: Record<string, unknown> | null,
  after: Record<string, unknown> | null,
): AuditEventInput {
  return {
    actor: actorOf(ctx.subject),
    action,
    objectType,
    objectId,
    before,
    after,
    requestId: ctx.requestId ?? null,
  };
}
