// The lock's codes in words for people.

/** "door-forced-open" → "Door forced open". */
export const spoken = (code) => {
  const text = String(code ?? "").replace(/[-_]/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
};

export const BOLT = {
  locked: "Locked",
  unlocked: "Unlocked",
  moving: "Moving",
  jammed: "Jammed",
  unknown: "Unknown",
};

export const DOOR = { open: "Open", closed: "Closed", unknown: "Unknown" };

export const BLUETOOTH = { on: "On", off: "Off", absent: "Not fitted" };

// The operating mode in force (issue 15).
export const MODE = {
  normal: "Normal",
  vacation: "Vacation: administrators only from outside",
  privacy: "Privacy: nothing unlocks from outside",
  "no-remote": "No remote unlock",
  passage: "Passage: the bolt is held open",
};

/** "2 passcodes" / "1 passcode"; plural given when not just an "s". */
export const count = (n, one, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
