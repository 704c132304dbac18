/** Kept in step with package.json by hand (reading package.json at run time would tie dist/ to its location). */
export const VERSION = '0.1.0';
