import { servicePort } from '@coordbus/config';
import { baseConfig, EnvReader, runMain, runService } from '@coordbus/runtime';
import { jobsConfig } from './config';
import { JobsModule } from './jobs.module';

runMain(async () => {
  const env = new EnvReader();
  const base = baseConfig(env, {
    service: 'job-coordinator',
    defaultHttpPort: servicePort('job-coordinator'),
  });
  const jobs = jobsConfig(env);
  env.finish();
  await runService({ config: base, module: JobsModule.forRoot(jobs) });
}, 'job-coordinator');
