"""``InMemoryLoader``: each epoch a permutation drawn from the seed and the epoch, batched."""

import pytest
import torch

from gan_lightning.loader import InMemoryLoader


def test_loader_length_and_permutation():
    x = torch.arange(10).float()
    loader = InMemoryLoader(x, batch_size=4, seed=3)
    assert len(loader) == 3
    assert len(InMemoryLoader(x, batch_size=4, drop_last=True)) == 2
    epoch0 = torch.cat([b[0] for b in loader])
    assert sorted(epoch0.tolist()) == list(range(10))  # every item exactly once
    again = torch.cat([b[0] for b in loader])
    assert torch.equal(epoch0, again)  # same seed and epoch: same order
    loader.sampler.set_epoch(1)
    epoch1 = torch.cat([b[0] for b in loader])
    assert sorted(epoch1.tolist()) == list(range(10))
    assert not torch.equal(epoch0, epoch1)

def test_loader_without_shuffle_and_drop_last():
    x = torch.arange(10)
    plain = [b[0].tolist() for b in InMemoryLoader(x, batch_size=4, shuffle=False)]
    assert plain == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    dropped = [b[0] for b in InMemoryLoader(x, batch_size=4, drop_last=True, seed=1)]
    assert [len(b) for b in dropped] == [4, 4]
    assert len(set(torch.cat(dropped).tolist())) == 8  # still a permutation, last 2 dropped

def test_loader_order_depends_on_seed_and_epoch_only():
    x = torch.arange(100)
    a, b = InMemoryLoader(x, batch_size=32, seed=7), InMemoryLoader(x, batch_size=32, seed=7)
    b.sampler.set_epoch(3)
    a.sampler.set_epoch(3)
    assert torch.equal(torch.cat([t[0] for t in a]), torch.cat([t[0] for t in b]))
    c = InMemoryLoader(x, batch_size=32, seed=8)
    c.sampler.set_epoch(3)
    assert not torch.equal(torch.cat([t[0] for t in a]), torch.cat([t[0] for t in c]))

def test_loader_keeps_pairs_aligned():
    x = torch.arange(20)
    loader = InMemoryLoader(x, x * 10, batch_size=6, seed=0)
    for a, b in loader:
        assert torch.equal(a * 10, b)

@pytest.mark.parametrize("chunk_bytes", [1, 7 * 8 * 40, 2**30], ids=["batch", "7", "all"])
@pytest.mark.parametrize("drop_last", [False, True])
def test_loader_gathers_in_chunks_the_batches_of_one_permutation(chunk_bytes, drop_last):
    """Rows are gathered a chunk of batches at a time: the batches are those of the epoch's
    permutation, in order, whatever the chunk size (one batch, 7 of the 13, all)."""
    # rows of 40 bytes: 8 float32 values and an int64 label
    x = torch.arange(100).float().repeat_interleave(8).view(100, 8)
    labels = torch.arange(100) * 10
    loader = InMemoryLoader(x, labels, batch_size=8, seed=4, drop_last=drop_last)
    loader.chunk_bytes = chunk_bytes
    loader.sampler.set_epoch(2)
    order = torch.randperm(100, generator=torch.Generator().manual_seed(4 + 2))
    batches = list(loader)
    assert len(batches) == len(loader) == (12 if drop_last else 13)
    for i, (images, label) in enumerate(batches):
        rows = order[i * 8 : (i + 1) * 8]
        assert torch.equal(images, x[rows]) and torch.equal(label, labels[rows])
