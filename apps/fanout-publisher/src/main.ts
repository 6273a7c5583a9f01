import { runMain, runService } from '@coordbus/runtime';
import { FANOUT_SERVICE, loadFanoutConfig } from './config';
import { FanoutModule } from './fanout.module';

runMain(async () => {
  const config = loadFanoutConfig();
  await runService({
    config: config.base,
    module: FanoutModule.forRoot(config),
    transport: { batchSize: config.batchSize, reclaimIdleMs: config.reclaimIdleMs },
  });
}, FANOUT_SERVICE);
