import { Controller, Get, Module, Query } from '@nestjs/common';
import { createZodDto } from 'nestjs-zod';
import { z } from 'zod';
import { Public } from '../../apps/api/src/identity/permission.decorator';

class HelloQueryDto extends createZodDto(z.object({ name: z.string().max(64).optional() })) {}

/**
 * Bench-only route, mounted through `createApiApp({ extraModules })` and never part of the
 * product. It takes a query DTO so the global validation pipe does real work, and it is
 * public because the auth bench (bench/auth) measures authentication separately.
 */
@Controller('bench')
class HelloController {
  @Get('hello')
  @Public()
  hello(@Query() query: HelloQueryDto): { hello: string } {
    return { hello: query.name ?? 'world' };
  }
}

@Module({ controllers: [HelloController] })
export class BenchHelloModule {}
