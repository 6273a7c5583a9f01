// Injection tokens for the job classes a Nest app provides (the lib itself never imports Nest:
// the `coordbus jobs` CLI builds the same classes by hand).
export const JOB_STORE = Symbol('coordbus:jobs:store');
export const CANCEL_BUS = Symbol('coordbus:jobs:cancel-bus');
export const JOB_RUNNER = Symbol('coordbus:jobs:runner');
