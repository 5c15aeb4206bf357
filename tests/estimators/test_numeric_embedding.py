"""``numeric_embedding='periodic'``: periodic embeddings of the numeric inputs (issue 15)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.exceptions import NotFittedError

from sktorch_auto import TorchClassifier, TorchRegressor
from sktorch_auto.core.criterion import MixedCriterion, SoftmaxCriterion
from sktorch_auto.core.manual import manual_step
from sktorch_auto.estimators import nets
from sktorch_auto.estimators.nets import TabularInput, build_periodic_mlp

FAST = dict(n_epochs=15, device="cpu", random_state=0)


def _table(n=160, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"a": rng.normal(size=n), "b": rng.uniform(-3, 3, size=n),
                       "colour": rng.choice(["red", "green", "blue"], size=n),
                       "city": rng.choice([f"c{i}" for i in range(80)], size=n)})
    df.loc[::9, "a"] = np.nan
    return df


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("cards", [(), (4, 7), (4, 90, 6)])  # none, one-hot, + embedded
@pytest.mark.parametrize("softmax", [False, True])
@pytest.mark.parametrize("columns", [None, [0, 2]])  # all numeric inputs embedded, or some
def test_hand_written_gradients_equal_autograd(activation, cards, softmax, columns):
    torch.manual_seed(0)
    n_out = 3 if softmax else 2
    net = build_periodic_mlp(4, n_out, list(cards), (16, 8), activation,
                             periodic_columns=columns).double()
    x = torch.randn(30, 4, dtype=torch.float64)
    codes = torch.stack([torch.randint(0, c, (30,)) for c in cards], 1) if cards else None
    inputs = [x] if codes is None else [x, codes]
    if softmax:
        criterion = SoftmaxCriterion()
        target = torch.nn.functional.one_hot(torch.arange(30) % 3, 3).double()
    else:
        criterion = MixedCriterion(None, [1, 0], ([0.5, 0.0], [2.0, 1.0]))
        target = torch.stack([torch.randn(30), (torch.randn(30) > 0).double()], 1).double()
    # sample weights on half of the cases (they enter through the loss's gradient)
    weight = None if columns is None else torch.rand(30, dtype=torch.float64) * 3
    step = manual_step(net, criterion)
    assert step is not None
    loss = step(inputs, target, weight)
    manual = {name: p.grad.clone() for name, p in net.named_parameters()}
    net.zero_grad(set_to_none=True)
    reference = criterion(net(*inputs), target, weight)
    reference.backward()
    assert loss.item() == pytest.approx(reference.item(), rel=1e-12)
    for name, p in net.named_parameters():
        torch.testing.assert_close(manual[name], p.grad, rtol=1e-10, atol=1e-12)
        if name in ("frequency", "phase", "mix", "mix_bias"):
            assert p.grad.abs().sum() > 0  # the embeddings really learn


def test_the_embedding_is_periodic_in_its_input_and_the_same_in_train_and_eval():
    torch.manual_seed(0)
    net = build_periodic_mlp(2, 1, [], (8,), "relu").double()
    x = torch.randn(50, 2, dtype=torch.float64)
    with torch.no_grad():
        train = net._periodic(x)
        net.eval()
        exact = net._periodic(x)
        torch.testing.assert_close(train, exact, rtol=0, atol=1e-12)
        # a shift by one period of every frequency of column 0 changes nothing there
        net.frequency[0] = 0.25  # period 4 in standardised units
        shifted = x.clone()
        shifted[:, 0] += 4.0
        torch.testing.assert_close(net._periodic(shifted)[:, :nets.PERIODIC_DIM],
                                   net._periodic(x)[:, :nets.PERIODIC_DIM])
    width = TabularInput.encoded_width(2)
    assert width == 2 * (1 + nets.PERIODIC_DIM) and net.net[0].in_features == width


def test_only_the_chosen_columns_are_embedded():
    torch.manual_seed(0)
    net = build_periodic_mlp(3, 1, [5], (8,), "relu", periodic_columns=[1]).double()
    assert net.frequency.shape == (1, nets.PERIODIC_FREQUENCIES)
    assert net.net[0].in_features == 3 + 5 + nets.PERIODIC_DIM
    x = torch.randn(20, 3, dtype=torch.float64)
    codes = torch.randint(0, 5, (20, 1))
    with torch.no_grad():
        base = net(x, codes)
        moved = x.clone()
        moved[:, 0] += 1.0  # a column left plain enters the first layer linearly only
        first = net.net[0].weight[:, 0]
        hidden = net.net[0](torch.cat([x, *net._parts(x, codes)[1:],
                                       net._periodic(net._embedded(x))], 1))
        hidden_moved = net.net[0](torch.cat([moved, *net._parts(moved, codes)[1:],
                                             net._periodic(net._embedded(moved))], 1))
        torch.testing.assert_close(hidden_moved - hidden, first.expand(20, -1))
        assert not torch.equal(net(moved, codes), base)


def test_estimators_embed_columns_of_more_than_two_values_only():
    df = _table().assign(flag=lambda d: (d["b"] > 1).astype(int),
                         const=1.0)  # 0/1 and constant columns: nothing to embed
    y = df["b"].to_numpy()
    reg = TorchRegressor(**FAST, numeric_embedding="periodic").fit(df, y)
    # numeric inputs: a, b, flag, const, then the indicator of a's gaps
    assert reg.encoder_.n_numeric == 5
    assert reg.periodic_columns_ == [0, 1]
    reg.periodic_columns_.append(4)  # a copy: the fitted state stays as it was
    assert reg.periodic_columns_ == [0, 1]
    assert reg.net_.net.n_periodic == 2
    with pytest.raises(NotFittedError):
        TorchRegressor().periodic_columns_  # noqa: B018
    pred = reg.predict(df)
    loaded = pickle.loads(pickle.dumps(reg))
    np.testing.assert_array_equal(loaded.predict(df), pred)
    only_flags = TorchRegressor(**FAST, numeric_embedding="periodic").fit(
        df[["flag", "colour"]], y)
    assert not isinstance(only_flags.net_.net, TabularInput)  # nothing left to embed
    warm = TorchRegressor(**FAST, numeric_embedding="periodic", warm_start=True)
    warm.fit(df[["flag", "colour"]], y).fit(df[["flag", "colour"]], y)  # no refusal


def test_reserved_codes_start_neutral():
    torch.manual_seed(0)
    net = build_periodic_mlp(3, 1, [5, 90], (8,), "relu")
    first = net.net[0].weight
    # one-hot block of the 5-code column starts after the 3 numeric inputs
    assert torch.all(first[:, 3:5] == 0) and torch.any(first[:, 5:8] != 0)
    embedding = net.categorical.embedding.weight
    assert torch.all(embedding[:2] == 0) and torch.any(embedding[2:] != 0)


@pytest.mark.parametrize("estimator", [TorchClassifier, TorchRegressor])
def test_estimators_fit_tables_and_arrays_with_it(estimator):
    df = _table()
    y = (df["b"] > 0).to_numpy() if estimator is TorchClassifier else df["b"].to_numpy() * 2
    model = estimator(**FAST, numeric_embedding="periodic").fit(df, y)
    assert isinstance(model.net_.net, TabularInput)
    assert manual_step(model.net_.net, model.criterion_) is not None
    assert model.score(df, y) > (0.8 if estimator is TorchClassifier else 0.5)
    # numeric-only arrays, and a table of categories only (nothing to embed)
    X = df[["a", "b"]].fillna(0).to_numpy()
    assert isinstance(estimator(**FAST, numeric_embedding="periodic").fit(X, y).net_.net,
                      TabularInput)
    only_text = estimator(**FAST, numeric_embedding="periodic").fit(df[["colour"]], y)
    assert not isinstance(only_text.net_.net, TabularInput)


def test_saved_pickled_and_old_files(tmp_path):
    from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint

    df = _table()
    y = (df["b"] > 0).to_numpy()
    clf = TorchClassifier(**FAST, numeric_embedding="periodic").fit(df, y)
    clf.save(tmp_path / "m.skt")
    loaded = TorchClassifier.load(tmp_path / "m.skt")
    np.testing.assert_array_equal(loaded.predict_proba(df), clf.predict_proba(df))
    assert clf.periodic_columns_ == [0, 1] and loaded.periodic_columns_ == [0, 1]
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict_proba(df),
                                  clf.predict_proba(df))
    # a file written before the parameter existed: no embedding, loads as it was
    plain = TorchClassifier(**FAST, numeric_embedding=None).fit(df, y)
    plain.save(tmp_path / "plain.skt")
    content = load_checkpoint(tmp_path / "plain.skt")
    del content["params"]["numeric_embedding"]
    save_checkpoint(tmp_path / "old.skt", content)
    old = TorchClassifier.load(tmp_path / "old.skt")
    assert old.get_params()["numeric_embedding"] is None
    np.testing.assert_array_equal(old.predict_proba(df), plain.predict_proba(df))
    # a model pickled before it existed lacks the attribute: it reads as None
    del vars(plain)["numeric_embedding"]
    assert pickle.loads(pickle.dumps(plain)).get_params()["numeric_embedding"] is None


def test_files_and_pickles_from_before_the_column_choice_embed_every_column(tmp_path,
                                                                           monkeypatch):
    from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint
    from sktorch_auto.estimators import base

    df = _table()
    y = (df["b"] > 0).to_numpy()
    # as fitted before: the missing-value indicator (column 2) embedded as well
    monkeypatch.setattr(base, "_columns_to_embed", lambda numeric, rows, choice: None)
    clf = TorchClassifier(**FAST, numeric_embedding="periodic").fit(df, y)
    assert clf.net_.net.n_periodic == 3
    clf.save(tmp_path / "m.skt")
    content = load_checkpoint(tmp_path / "m.skt")
    del content["fitted"]["periodic_columns"]
    save_checkpoint(tmp_path / "old.skt", content)
    old = TorchClassifier.load(tmp_path / "old.skt")
    np.testing.assert_array_equal(old.predict_proba(df), clf.predict_proba(df))
    # a pickle of that time: neither the estimator's nor the module's new attributes
    del vars(clf)["_periodic_columns"]
    inner = clf.net_.net
    for name in ("n_periodic", "all_periodic"):
        del inner.__dict__[name]
    del inner._buffers["periodic_columns"]
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(df), old.predict_proba(df))
    assert copy.net_.net.n_periodic == 3


def test_warm_start_refuses_to_ignore_a_changed_embedding():
    df = _table()
    y = df["b"].to_numpy()
    reg = TorchRegressor(**FAST, numeric_embedding=None, warm_start=True).fit(df, y)
    before = reg.predict(df)
    reg.set_params(numeric_embedding="periodic")
    with pytest.raises(ValueError, match="numeric_embedding='periodic'"):
        reg.fit(df, y)
    np.testing.assert_array_equal(reg.predict(df), before)
    reg.set_params(numeric_embedding=None).fit(df, y)  # unchanged: continues


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="numeric_embedding"):
        TorchRegressor(numeric_embedding="pbld").fit(np.zeros((10, 2)), np.arange(10.0))


def test_files_saved_with_another_one_hot_limit_load(tmp_path, monkeypatch):
    """A fitted model records the one-hot limit it was built with (files written before
    the limit was recorded used 10), so changing the default does not break old files."""
    from sktorch_auto.core.checkpoint import load_checkpoint, save_checkpoint

    rng = np.random.default_rng(5)
    df = pd.DataFrame({"x": rng.normal(size=400),  # 30 shops of ~13 rows: 32 codes
                       "shop": rng.choice([f"s{i}" for i in range(30)], size=400)})
    y = df["x"].to_numpy() + (df["shop"] < "s2").to_numpy()
    monkeypatch.setattr(nets, "ONE_HOT_MAX", 10)
    old_style = TorchRegressor(**FAST, numeric_embedding=None).fit(df, y)
    assert old_style.net_.net.embedding is not None  # the shop column is embedded
    old_style.save(tmp_path / "m.skt")
    content = load_checkpoint(tmp_path / "m.skt")
    del content["fitted"]["one_hot_max"]  # as files from before it was recorded
    save_checkpoint(tmp_path / "old.skt", content)
    monkeypatch.setattr(nets, "ONE_HOT_MAX", 64)
    for path in ("m.skt", "old.skt"):
        loaded = TorchRegressor.load(tmp_path / path)
        np.testing.assert_array_equal(loaded.predict(df), old_style.predict(df))
        loaded.set_params(warm_start=True).fit(df, y)  # continues with the same network
        assert loaded.net_.net.embedding is not None
    fresh = TorchRegressor(**FAST, numeric_embedding=None).fit(df, y)
    assert fresh.net_.net.embedding is None  # today's limit one-hot encodes the shops


def test_prediction_in_chunks_equals_one_pass(monkeypatch):
    df = _table()
    y = (df["b"] > 0).to_numpy()
    clf = TorchClassifier(**FAST, numeric_embedding="periodic").fit(df, y)
    whole = clf.predict_proba(df)
    monkeypatch.setattr(nets, "EVAL_CHUNK_ELEMENTS", 3 * 64 * 7)  # 7 rows at a time
    np.testing.assert_array_equal(clf.predict_proba(df), whole)


def test_auto_embeds_narrow_tables_and_not_wide_ones(tmp_path, monkeypatch):
    df = _table()
    y = df["b"].to_numpy()
    auto = TorchRegressor(**FAST).fit(df, y)  # the default
    assert auto.get_params()["numeric_embedding"] == "auto"
    assert isinstance(auto.net_.net, TabularInput) and auto.periodic_columns_ == [0, 1]
    # wider than the limit: no embedding, recorded as such, and it persists
    monkeypatch.setattr(nets, "PERIODIC_AUTO_MAX_COLUMNS", 1)
    wide = TorchRegressor(**FAST, warm_start=True).fit(df, y)
    assert not isinstance(wide.net_.net, TabularInput) and wide.periodic_columns_ == []
    assert isinstance(TorchRegressor(**FAST, numeric_embedding="periodic").fit(df, y).net_.net,
                      TabularInput)  # asked for explicitly: no limit
    wide.save(tmp_path / "wide.skt")
    monkeypatch.setattr(nets, "PERIODIC_AUTO_MAX_COLUMNS", 64)
    loaded = TorchRegressor.load(tmp_path / "wide.skt")
    np.testing.assert_array_equal(loaded.predict(df), wide.predict(df))
    # 'auto' continues with what it chose; None refuses to ignore the embeddings
    wide.fit(df, y)
    assert not isinstance(wide.net_.net, TabularInput)
    auto.set_params(warm_start=True).fit(df, y)
    assert isinstance(auto.net_.net, TabularInput)
    with pytest.raises(ValueError, match="numeric_embedding=None"):
        auto.set_params(numeric_embedding=None).fit(df, y)


def test_auto_chooses_the_same_columns_for_sparse_and_dense_input():
    import scipy.sparse as sp

    from sktorch_auto.estimators.base import _columns_to_embed

    rng = np.random.default_rng(0)
    for _ in range(200):
        n, m = rng.integers(1, 30), rng.integers(1, 8)
        X = rng.choice([0, 0, 1, -1, 2, 0.5], size=(n, m)) * (rng.random((n, m)) < rng.random())
        sparse = sp.csr_matrix(X)
        if rng.random() < 0.3:  # explicit zeros too
            sparse.data[rng.random(sparse.nnz) < 0.2] = 0
        rows = np.sort(rng.choice(n, size=rng.integers(1, n + 1), replace=False))
        dense = _columns_to_embed(sparse.toarray(), rows, "auto")
        assert _columns_to_embed(sparse, rows, "auto") == dense
        assert _columns_to_embed(sparse, rows, "periodic") == list(range(m))
    X = np.column_stack([rng.normal(size=120), rng.integers(0, 2, 120),
                         rng.poisson(0.3, 120)]).astype(float)
    y = X[:, 0] + X[:, 2]
    dense, sparse = (TorchRegressor(**FAST).fit(data, y) for data in (X, sp.csr_matrix(X)))
    assert dense.periodic_columns_ == sparse.periodic_columns_ == [0, 2]
    np.testing.assert_allclose(sparse.predict(X), dense.predict(X), rtol=1e-4, atol=1e-4)


def test_a_users_network_gets_no_embeddings_and_no_pass_over_the_data(monkeypatch):
    from sktorch_auto.estimators import base

    def refuse(*args):
        raise AssertionError("the columns to embed were computed for a user's network")

    monkeypatch.setattr(base, "_columns_to_embed", refuse)
    X = np.random.default_rng(0).normal(size=(80, 3))
    reg = TorchRegressor(nets.build_mlp, {"hidden_layer_sizes": (8,)}, **FAST).fit(X, X[:, 0])
    assert isinstance(reg.net_.net, torch.nn.Sequential) and reg.periodic_columns_ is None
    with pytest.raises(AssertionError, match="user's network"):
        TorchRegressor(**FAST).fit(X, X[:, 0])  # the built-in one does need them
