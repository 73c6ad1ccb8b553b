"""Datasets as uint8 image arrays: digits, CIFAR-10 (batches, class tree, tarball), any class-folder
tree (decoded lazily), their subsets and index orderings."""
