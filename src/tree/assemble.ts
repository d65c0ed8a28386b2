// Links source entries into the tree as they pass the entry stages, so a stage that drops an
// entry drops it (and everything below it) from the image.
import type { TreeNode } from './node.js';
import { isDirNode, sortChildren, walk } from './node.js';
import { normalizeHardlinks } from './overlay.js';

export class TreeAssembler {
  root?: TreeNode;
  private readonly attached = new Set<TreeNode>();
  /** Where each attached node sits in its parent's children, so a replacement costs O(1), not a scan. */
  private readonly position = new Map<TreeNode, number>();
  /** A dropped first name of a hardlink group -> the name that carries the inode instead. */
  private readonly promoted = new Map<TreeNode, TreeNode>();

  /**
   * The finished tree, every directory's children in name-byte order and every hardlink group
   * rebuilt from the names left (replaced entries may have been, or joined, a group); the
   * bookkeeping (a set of every node) is let go.
   */
  finish(): TreeNode | undefined {
    this.attached.clear();
    this.position.clear();
    this.promoted.clear();
    if (this.root) {
      for (const n of walk(this.root)) if (isDirNode(n)) sortChildren(n);
      normalizeHardlinks(this.root);
    }
    return this.root;
  }

  /** Returns false when the entry's parent was dropped (so the entry is dropped too). */
  attach(node: TreeNode, parent: TreeNode | undefined, replaces?: TreeNode): boolean {
    const old = replaces && this.attached.has(replaces) ? replaces : undefined;
    if (!parent) {
      this.root = node;
    } else {
      if (!this.attached.has(parent)) return false;
      const kids = (parent.children ??= []);
      const at = old ? this.position.get(old) : undefined;
      if (at !== undefined && kids[at] === old) {
        kids[at] = node;
        this.position.set(node, at);
      } else {
        this.position.set(node, kids.length);
        kids.push(node);
      }
    }
    if (old) {
      this.attached.delete(old);
      this.position.delete(old);
      if (isDirNode(node) && isDirNode(old)) node.children = old.children;
    }
    if (isDirNode(node)) node.children ??= [];
    node.links = 1;
    if (node.linkTo) {
      const primary = this.promoted.get(node.linkTo) ?? (this.attached.has(node.linkTo) ? node.linkTo : undefined);
      if (primary) {
        node.linkTo = primary;
        primary.links++;
      } else {
        this.promoted.set(node.linkTo, node);
        node.linkTo = undefined;
      }
    }
    this.attached.add(node);
    return true;
  }
}
