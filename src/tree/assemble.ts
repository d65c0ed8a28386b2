// Links source entries into the tree as they pass the entry stages, so a stage that drops an
// entry drops it (and everything below it) from the image.
import type { TreeNode } from './node.js';
import { isDirNode, sortChildren, walk } from './node.js';
import { normalizeHardlinks } from './overlay.js';

export class TreeAssembler {
  root?: TreeNode;
  /**
   * Every attached node, and where it sits in its parent's children (-1: the root, or nowhere
   * known), so a replacement costs O(1), not a scan. One map, not a set beside it: one hash
   * operation less per entry.
   */
  private readonly position = new Map<TreeNode, number>();
  /** A dropped first name of a hardlink group -> the name that carries the inode instead. */
  private readonly promoted = new Map<TreeNode, TreeNode>();

  /**
   * The finished tree, every directory's children in name-byte order and every hardlink group
   * rebuilt from the names left (replaced entries may have been, or joined, a group); the
   * bookkeeping (a map of every node) is let go.
   */
  finish(): TreeNode | undefined {
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
    const old = replaces && this.position.has(replaces) ? replaces : undefined;
    if (!parent) {
      this.root = node;
    } else {
      if (!this.position.has(parent)) return false;
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
      this.position.delete(old);
      if (isDirNode(node) && isDirNode(old)) node.children = old.children;
    }
    if (isDirNode(node)) node.children ??= [];
    node.links = 1;
    if (node.linkTo) {
      const primary = this.promoted.get(node.linkTo) ?? (this.position.has(node.linkTo) ? node.linkTo : undefined);
      if (primary) {
        node.linkTo = primary;
        primary.links++;
      } else {
        this.promoted.set(node.linkTo, node);
        node.linkTo = undefined;
      }
    }
    // The root has no place among children; nor has a node that replaced itself.
    if (!parent || old === node) this.position.set(node, -1);
    return true;
  }
}
