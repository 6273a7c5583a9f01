import { runMain, runService } from '@coordbus/runtime';
import { ArchivistModule } from './archivist.module';
import { SERVICE, loadConfig } from './config';

runMain(async () => {
  const config = loadConfig();
  await runService({
    config,
    module: ArchivistModule.forRoot(config),
    transport: { batchSize: config.batchSize, reclaimIdleMs: config.reclaimIdleMs },
  });
}, SERVICE);
