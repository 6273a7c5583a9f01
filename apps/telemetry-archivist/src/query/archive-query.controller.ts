import { Controller, Get, Query, UseGuards, ValidationPipe } from '@nestjs/common';
import { AccessGuard } from '../access/access.guard';
import { ArchiveQueryService } from './archive-query.service';
import { EpisodesQueryDto, EventsQueryDto, SessionsQueryDto } from './query.dto';

/** Unknown parameters are refused too, so a typo (`?sesion=`) is a 400, not a silently unfiltered answer. */
const pipe = new ValidationPipe({
  transform: true,
  whitelist: true,
  forbidNonWhitelisted: true,
  validationError: { target: false, value: false },
});

/** The archive's read API (GET /v1/events, /v1/sessions, /v1/telemetry/episodes). */
@Controller('v1')
@UseGuards(AccessGuard)
export class ArchiveQueryController {
  constructor(private readonly query: ArchiveQueryService) {}

  @Get('events')
  events(@Query(pipe) q: EventsQueryDto) {
    return this.query.events(q);
  }

  @Get('sessions')
  sessions(@Query(pipe) q: SessionsQueryDto) {
    return this.query.sessions(q);
  }

  @Get('telemetry/episodes')
  episodes(@Query(pipe) q: EpisodesQueryDto) {
    return this.query.episodes(q);
  }
}
