/**
 * Whether the tests run under CPU emulation: npm run test:vm runs a subset
 * inside qemu with TCG (scripts/vm/guest/lib.sh sets BRIG_TEST_EMULATION),
 * where the guest's code runs about 40 times slower than on the host. Only
 * figures that emulation legitimately inflates may be loosened with it (the
 * CPU time of exec and the dynamic loader, say), never a verdict or a limit.
 */
export const EMULATED = process.env.BRIG_TEST_EMULATION === 'tcg';
