/**
 * The demo page's first module: it freezes the intrinsics before main.ts and the libraries it
 * imports are evaluated (see ui/freeze-intrinsics.ts). A module of its own, listed first in index.html: module scripts run in document order.
 */
import { freezeIntrinsics } from '../ui/freeze-intrinsics';

freezeIntrinsics();
