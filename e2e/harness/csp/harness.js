// Inline scripts are refused by this page's policy, so the harness loads from a file.
import * as rlmWeb from '/dist/index.js';

window.rlmWeb = rlmWeb;
window.cspViolations = [];
document.addEventListener('securitypolicyviolation', (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
/** Whether `new Function` throws EvalError in an ordinary task of this page (not in a DevTools evaluation). */
window.evalBlocked = () =>
  new Promise((resolve) =>
    setTimeout(() => {
      try {
        new Function('return 1');
        resolve(false);
      } catch (e) {
        resolve(e instanceof EvalError);
      }
    }, 0),
  );
window.harnessReady = true;
