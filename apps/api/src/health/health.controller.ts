import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { ErrorResponseDto } from '../http/error-body';
import { Public } from '../identity/permission.decorator';
import { LivenessDto, ReadinessDto } from './health.dto';
import { type Readiness, ReadinessService } from './readiness.service';

// Probes come from load balancers and supervisors that hold no token.
@ApiTags('health')
@Public()
@Controller()
export class HealthController {
  constructor(private readonly readinessService: ReadinessService) {}

  @Get('healthz')
  @ApiOperation({ summary: 'Liveness: the process answers HTTP. Checks no dependency.' })
  @ApiOkResponse({ type: LivenessDto })
  liveness(): LivenessDto {
    return { status: 'ok' };
  }

  @Get('readyz')
  @ApiOperation({ summary: 'Readiness: Postgres and Redis answer within 1 s each.' })
  @ApiOkResponse({ type: ReadinessDto })
  @ApiServiceUnavailableResponse({
    type: ErrorResponseDto,
    description: 'DependencyUnavailable; `error.details` has the status of each dependency.',
  })
  readiness(): Promise<Readiness> {
    return this.readinessService.check();
  }
}
