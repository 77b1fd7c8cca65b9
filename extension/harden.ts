/**
 * The side panel's first module: it freezes the intrinsics before panel.ts and the libraries it
 * imports are evaluated (see ui/freeze-intrinsics.ts). A module of its own, listed first in panel.html (the panel allows no inline script): module scripts run in document order.
 */
import { freezeIntrinsics } from '../ui/freeze-intrinsics';

freezeIntrinsics();
